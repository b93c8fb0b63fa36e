"""Rebuild tests/report/fixtures/run/ from real smoke runs (results.jsonl + environment.json).

    python tests/report/make_fixture.py                 # from the repo root; uses .tox/{torch,tf,jax}
    python tests/report/make_fixture.py --parity-only   # refresh parity.jsonl alone

Each family env that exists runs its own frameworks into one run dir (as `tox -m bench` does), then
`dlrosetta parity` adds its verdicts (parity.jsonl) to the same dir, and the three files are copied into
the fixture with machine-specific paths replaced. Nothing here is
made up: every row is a real cell of the smoke profile, including the deliberately failing ones
(a 3-second timeout, a learning rate that diverges) that show the report's error cells. Re-run it
when new framework columns land.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run"
FAMILY_ENVS = {"torch": ("core", "torch"), "tf": ("tf",), "jax": ("jax",)}


def dlrosetta(env: str, out: Path, *args: str, check: bool = False, command: str = "run") -> None:
    exe = ROOT / ".tox" / env / "bin" / "dlrosetta"
    cmd = [str(exe), command, "--profile", "smoke", "--out", str(out), "--resume", "--no-progress", *args]
    print("+", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=check)


def primary_variants(task: str, frameworks: list[str]) -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from harness.matrix.registry import applicability, variants

    return {f: next(iter(variants(task, f))) for f in frameworks if applicability(task, f) is None}


def parity(envs: list[str], out: Path) -> None:
    """`dlrosetta parity` (shared weights, 20 steps) for the primary idiom of every column, into the same
    run dir: it adds parity_cells.jsonl and parity.jsonl."""
    from harness.matrix.registry import FAMILIES

    for env in envs:
        frameworks = [f for fam in FAMILY_ENVS[env] for f in FAMILIES[fam]]
        primary = {v for task in ("mnist_mlp", "linear_regression") for v in primary_variants(task, frameworks).values()}
        dlrosetta(env, out, "--family", ",".join(FAMILY_ENVS[env]), "--tasks", "mnist_mlp,linear_regression",
                  "--datasets", "synthetic,mnist", "--modes", "full-batch", "--variants", ",".join(sorted(primary)),
                  "--steps", "20", command="parity")


def copy_sanitized(out: Path, names) -> None:
    """Copy run files into the fixture with this machine's paths replaced by placeholders."""
    FIXTURE.mkdir(parents=True, exist_ok=True)
    for name in names:
        text = (out / name).read_text()
        for path, alias in ((str(out.resolve()), "<run>"), (str(ROOT), "<repo>"), (str(Path.home()), "~")):
            text = text.replace(path, alias)
        (FIXTURE / name).write_text(text)


def main() -> int:
    from harness.matrix.registry import FAMILIES

    os.environ.setdefault("DLROSETTA_DATA", str(ROOT.parent / "shared" / "data"))
    out = Path(tempfile.mkdtemp(prefix="dlrosetta-fixture-")) / "run"
    envs = [e for e in FAMILY_ENVS if (ROOT / ".tox" / e / "bin" / "dlrosetta").exists()]
    if sys.argv[1:] == ["--parity-only"]:  # refresh parity.jsonl alone
        parity(envs, out)
        copy_sanitized(out, ("parity.jsonl",))
        shutil.rmtree(out.parent, ignore_errors=True)
        return 0
    for env in envs:
        family = ",".join(FAMILY_ENVS[env])
        # the matrix: every framework of the family, every variant, a couple of linreg cells
        dlrosetta(env, out, "--family", family, "--tasks", "x2_descent,linear_regression,mnist_mlp,mnist_cnn",
                  "--datasets", "synthetic,diabetes,mnist", "--modes", "full-batch,minibatch")
        # a sweep: the primary idiom of each MNIST MLP column at two batch sizes
        for fw, variant in primary_variants("mnist_mlp", FAMILIES[FAMILY_ENVS[env][-1]]).items():
            dlrosetta(env, out, "--tasks", "mnist_mlp", "--frameworks", fw, "--variants", variant,
                      "--sweep", "batch_size=64,256")
    # real failures, so that the report's error cells are exercised by real rows
    dlrosetta("torch", out, "--tasks", "mnist_mlp", "--frameworks", "pytorch", "--variants", "dataloader",
              "--timeout", "3", "--set", "epochs=2")
    dlrosetta("torch", out, "--tasks", "linear_regression", "--frameworks", "numpy", "--datasets", "synthetic",
              "--modes", "full-batch", "--set", "lr=1000")

    parity(envs, out)

    copy_sanitized(out, ("results.jsonl", "environment.json", "parity.jsonl"))
    rows = [json.loads(line) for line in (FIXTURE / "results.jsonl").read_text().splitlines() if line.strip()]
    print(f"fixture: {len(rows)} rows -> {FIXTURE}")
    shutil.rmtree(out.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
