"""Cross-framework ONNX check over a finished run dir: every column's file, one runtime, same inputs.

Each cell's `harness.checks.onnx_parity.check` compares a file with its own framework. This compares the
files of one task with each other: for every group of cells that saw the same data (same task,
dataset, mode, settings and init), every exported model (cells/<slug>/model.onnx) runs in
onnxruntime on the same test inputs, and we report per column the ONNX accuracy (or test MSE),
pairwise argmax agreement, the accuracy spread (max − min, which should be ≤ 0.5 points), and where
the columns start from the same weights (a `--init shared` run; linear regression always starts at
zero) the largest |Δ| between any two columns' outputs.

Framework-free: onnxruntime + numpy (and harness.matrix.data for the test set).

    python -m harness.checks.onnx_cross RUN_DIR [--data-dir DIR]   # writes RUN_DIR/onnx_cross.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from harness.checks.onnx_parity import run_all, session_for
from harness.matrix.registry import slug_of

SCHEMA = 1
SPREAD_POINTS = 0.5  # accuracy spread allowed across columns, percentage points
MSE_SPREAD_PCT = 0.5  # linear regression: (max / min test MSE − 1), percent
RUNNABLE = ("ok", "mismatch")  # onnx statuses whose file ran in the cell


def _group_key(row: dict) -> str:
    """Cells that saw the same data: the spec without what only the column chooses."""
    spec = {k: v for k, v in (row.get("spec") or {}).items() if k not in ("variant", "device")}
    return json.dumps(spec, sort_keys=True, default=str)


def _onnx_path(run_dir: Path, row: dict) -> Path:
    rel = (row.get("onnx") or {}).get("file")
    if rel:
        return run_dir / rel
    return run_dir / "cells" / slug_of(row["cell"]) / "model.onnx"


def _latest_rows(run_dir: Path) -> list[dict]:
    from harness.running.runner import read_rows

    latest: dict = {}
    for row in read_rows(run_dir / "results.jsonl"):  # a resumed run may repeat a cell: the last wins
        latest[row["cell"]] = row
    return list(latest.values())


def cross_check(run_dir, data_dir: str | None = None, threads: int | None = None) -> dict:
    """The cross-framework check of a run dir, as a dict (see `write` for the file)."""
    import onnxruntime as ort

    from harness.matrix import data as data_mod
    from harness.matrix.tasks import spec_from_dict

    run_dir = Path(run_dir)
    groups: dict = {}
    for row in _latest_rows(run_dir):
        if row.get("task") in ("linear_regression", "mnist_mlp", "mnist_cnn") and row.get("spec"):
            groups.setdefault(_group_key(row), []).append(row)
    out = {"schema": SCHEMA, "run_dir": str(run_dir), "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "onnxruntime": ort.__version__, "spread_points_allowed": SPREAD_POINTS,
           "mse_spread_pct_allowed": MSE_SPREAD_PCT, "groups": []}
    for rows in groups.values():
        rows.sort(key=lambda r: r["cell"])
        first = rows[0]
        spec = spec_from_dict(first["spec"])
        classify = spec.task.startswith("mnist")
        group = {"task": spec.task, "dataset": first.get("dataset"), "mode": first.get("mode"),
                 "params": first.get("params") or {}, "profile": first.get("profile"),
                 "init": first.get("init"), "columns": [], "not_run": []}
        group["same_weights"] = first.get("init") == "shared" or spec.task == "linear_regression"
        runnable = [r for r in rows if (r.get("onnx") or {}).get("status") in RUNNABLE]
        for r in rows:
            if r not in runnable:  # every cell is named, with why its file is not here
                onnx = r.get("onnx") or {}
                group["not_run"].append({"cell": r["cell"], "status": r.get("status"),
                                         "onnx_status": onnx.get("status"),
                                         "error": onnx.get("error") or r.get("error") or (
                                             None if onnx else "no onnx block: run with --no-onnx, or "
                                             "the implementation has no export_onnx")})
        if not runnable:
            out["groups"].append(group)
            continue
        data = data_mod.load(spec, data_dir or _data_dir(run_dir, first))
        group["n_test"] = int(len(data.y_test))
        outputs = {}
        for r in runnable:
            col = {"cell": r["cell"], "framework": r["framework"], "variant": r["variant"],
                   "exporter": r["onnx"].get("exporter"), "file": str(_onnx_path(run_dir, r).relative_to(run_dir))}
            try:
                y = run_all(session_for(_onnx_path(run_dir, r), threads), data.x_test)
                y = np.asarray(y, np.float64).reshape(len(data.y_test), -1)
                outputs[r["cell"]] = y
                if classify:
                    col["ort_test_accuracy"] = float((y.argmax(1) == data.y_test).mean())
                    native = (r.get("metrics") or {}).get("test_accuracy")
                    col["native_test_accuracy"] = native
                else:
                    col["ort_test_mse"] = float(np.mean((y.reshape(data.y_test.shape) - data.y_test) ** 2))
                    col["native_test_mse"] = (r.get("metrics") or {}).get("test_mse")
                col["status"] = "ok"
            except Exception as exc:  # noqa: BLE001 - a file that ran in its cell but not here
                col.update(status="failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:400])
            group["columns"].append(col)
        group.update(_compare(outputs, data.y_test, classify, group["same_weights"]))
        out["groups"].append(group)
    out["ok"] = all(g.get("within_tolerance") is not False for g in out["groups"])
    return out


def _compare(outputs: dict, y: np.ndarray, classify: bool, same_weights: bool) -> dict:
    names = sorted(outputs)
    res: dict = {"labels": names}
    if not names:
        return res
    if classify:
        preds = {n: outputs[n].argmax(1) for n in names}
        agree = [[float(np.mean(preds[a] == preds[b])) for b in names] for a in names]
        acc = [100.0 * float(np.mean(preds[n] == y)) for n in names]
        res["argmax_agreement"] = agree
        res["min_argmax_agreement"] = min(min(row) for row in agree)
        res["accuracy_spread_points"] = max(acc) - min(acc)
        res["within_tolerance"] = res["accuracy_spread_points"] <= SPREAD_POINTS + 1e-9
    else:
        mse = [float(np.mean((outputs[n].reshape(y.shape) - y) ** 2)) for n in names]
        res["mse_spread_pct"] = 100.0 * (max(mse) / min(mse) - 1.0) if min(mse) > 0 else 0.0
        res["within_tolerance"] = res["mse_spread_pct"] <= MSE_SPREAD_PCT + 1e-9
    if same_weights:  # same start, same batches: the outputs themselves should agree
        diff = [[float(np.max(np.abs(outputs[a] - outputs[b]))) for b in names] for a in names]
        res["max_abs_diff"] = diff
        res["max_abs_diff_overall"] = max(max(row) for row in diff)
    return res


def _data_dir(run_dir: Path, row: dict) -> str | None:
    """The data dir the cell itself used (its job file), else DLROSETTA_DATA."""
    try:
        job = json.loads((_onnx_path(run_dir, row).parent / "job.json").read_text())
        if job.get("data_dir"):
            return job["data_dir"]
    except (OSError, ValueError):
        pass
    return os.environ.get("DLROSETTA_DATA")


def write(run_dir, data_dir: str | None = None, threads: int | None = None) -> Path:
    """Run the check and write RUN_DIR/onnx_cross.json; returns its path."""
    result = cross_check(run_dir, data_dir, threads)
    path = Path(run_dir) / "onnx_cross.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    return path


def summary_lines(result: dict) -> list[str]:
    lines = []
    for g in result["groups"]:
        where = " ".join(str(x) for x in (g["task"], g.get("dataset"), g.get("mode")) if x)
        where += f" ({g.get('profile')}, init {g.get('init')})"
        cols = len(g["columns"])
        if "accuracy_spread_points" in g:
            detail = (f"accuracy spread {g['accuracy_spread_points']:.2f} points, "
                      f"min argmax agreement {100 * g['min_argmax_agreement']:.2f} %")
        elif "mse_spread_pct" in g:
            detail = f"test-MSE spread {g['mse_spread_pct']:.3f} %"
        else:
            detail = "no runnable file"
        if "max_abs_diff_overall" in g:
            detail += f", max |Δ| {g['max_abs_diff_overall']:.2e}"
        mark = {True: "ok  ", False: "WIDE", None: "-   "}[g.get("within_tolerance")]
        lines.append(f"{mark} {where}: {cols} files, {detail}, {len(g['not_run'])} without a file")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.checks.onnx_cross", description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    if not (Path(args.run_dir) / "results.jsonl").exists():
        print(f"{args.run_dir} is not a run dir: no results.jsonl in it", file=sys.stderr)
        return 2
    path = write(args.run_dir, args.data_dir)
    result = json.loads(path.read_text())
    for line in summary_lines(result):
        print(line)
    print(f"onnx cross-check: {path}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
