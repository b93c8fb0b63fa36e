"""Deployment exports with a load-back check: each framework's own serving format, not ONNX.

`check()` runs inside the cell's process after training, for the MNIST tasks. It asks the
implementation's `export_deploy(model, path, example)` to write the format a framework deploys with
(torch.export's .pt2, a TensorFlow SavedModel, a serialized jax.export), then `load_deploy(file)` to
load it back the way a server would, without the implementation's model code, and compares the loaded
model's outputs with the live model's `predict` at two batch sizes (the second, odd one proves that
the batch axis was exported dynamic): max |Δ| and argmax agreement. The row records the exporter, the
file (or folder) size, and the times to export, to load and to run the first call.

Statuses: ok (within MAX_ABS_DIFF and every argmax agrees) · mismatch (loads and runs, but differs) ·
failed (the export, the load or the call raised: the stage says which) · not_applicable (no export_deploy
in the file, or the framework has no such exporter: export_deploy raises NotImplementedError(reason)).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from harness.checks.onnx_parity import BATCHES, MAX_ABS_DIFF, batch_of, compare, one_line, parity_status

EXPORT_STEM = "deploy"  # cell_dir/deploy(.pt2 | .jax_export | /saved_model.pb)


def size_mb(path: Path) -> float:
    """A file's size, or a folder's (a SavedModel is a folder of graph + variables), in MiB."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


def check(module, model, spec, data, cell_dir: Path) -> dict:
    if not hasattr(module, "export_deploy"):
        return {"status": "not_applicable", "error": f"{module.__name__} defines no export_deploy"}
    x = data.x_test
    row: dict = {"status": None, "error": None, "stage": None}
    stage, t0 = "export", time.perf_counter()
    try:
        info = module.export_deploy(model, str(Path(cell_dir) / EXPORT_STEM), batch_of(x, BATCHES[0]))
        row["export_s"] = time.perf_counter() - t0
        file = Path(info.pop("file"))
        row.update(info, file=file.name, file_mb=size_mb(file))
        stage, t0 = "load", time.perf_counter()
        run = module.load_deploy(str(file))
        row["load_s"] = time.perf_counter() - t0
        stage = "run"
        per_batch = {}
        for batch in BATCHES:
            xb = batch_of(x, batch)
            t0 = time.perf_counter()
            loaded = np.asarray(run(xb))
            if batch == BATCHES[0]:
                row["first_call_s"] = time.perf_counter() - t0  # a loaded program may compile on first use
            per_batch[str(batch)] = compare(np.asarray(module.predict(model, xb)), loaded, classify=True)
    except NotImplementedError as exc:  # the framework has no exporter of this kind: the reason says why
        return {"status": "not_applicable", "error": str(exc), "stage": stage}
    except Exception as exc:  # noqa: BLE001 - recorded, the cell goes on
        row.update(status="failed", stage=stage, error=one_line(exc))
        return row
    row["batches"] = per_batch  # as the ONNX block names them
    row["max_abs_diff"] = max(v["max_abs_diff"] for v in per_batch.values())
    row["argmax_agreement"] = min(v["argmax_agreement"] for v in per_batch.values())
    row["status"] = parity_status(per_batch)
    return row
