"""`python -m harness.running.rundir new DIR`: start a fresh run dir for `tox -m bench`.

An existing DIR with results is kept, renamed after its run id, so no measurement is ever lost.
Set DLROSETTA_RESUME=1 to keep DIR as it is and let the bench envs resume it.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def new(path: Path) -> Path:
    if path.exists() and os.environ.get("DLROSETTA_RESUME") != "1":
        try:
            run_id = json.loads((path / "environment.json").read_text())["run_id"]
        except (OSError, ValueError, KeyError):
            run_id = time.strftime("%Y%m%d-%H%M%S")
        keep = path.with_name(f"{path.name}-{run_id}")
        path.rename(keep)
        print(f"kept the previous run as {keep}")
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "new":
        print("usage: python -m harness.running.rundir new DIR", file=sys.stderr)
        sys.exit(2)
    print(f"run dir: {new(Path(sys.argv[2]))}")
