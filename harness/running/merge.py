"""`dlrosetta merge RUN_DIR... -o OUT`: shard run dirs (one per machine or CI job) joined into one.

The shards must be of one experiment: the same commit, profile, init and `--set`/`--sweep` settings,
unless `--allow-mismatch` (then the differences are kept in OUT/environment.json). A (cell, repeat,
attempt) found in two shards is refused: a merged run never holds two rows for one process. Every row
keeps the host it ran on (`host`), and environment.json lists every host under `hosts`, so a reader can
tell a CPU shard from a GPU shard and never rank timings of different hosts without saying so.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.matrix.tasks import SpecError
from harness.running.runner import append_row, read_rows

# what must agree between shards (environment.json key, or a row field), and how it is named
CHECKED = (("git_commit", "commit"), ("profile", "profile"), ("settings", "--set/--sweep settings"))


def _load(run_dir: Path) -> tuple[dict, list[dict]]:
    results = run_dir / "results.jsonl"
    if not results.is_file():
        raise SpecError(f"{run_dir} is not a run dir: no results.jsonl in it")
    try:
        env = json.loads((run_dir / "environment.json").read_text())
    except (OSError, ValueError):
        raise SpecError(f"{run_dir}/environment.json is missing or not JSON") from None
    if not isinstance(env, dict):
        raise SpecError(f"{run_dir}/environment.json is not an object")
    rows = [r for r in read_rows(results) if isinstance(r, dict) and isinstance(r.get("cell"), str)
            and isinstance(r.get("repeat", 0) or 0, int) and isinstance(r.get("attempt", 0) or 0, int)]
    return env, rows


def merge(run_dirs, out, allow_mismatch: bool = False) -> dict:
    """Write the merged run dir; returns a summary {rows, shards, hosts, mismatches}."""
    dirs = [Path(d) for d in run_dirs]
    out = Path(out)
    if len(dirs) < 2:
        raise SpecError("merge takes two run dirs or more")
    if out.exists() and any(out.iterdir()):
        raise SpecError(f"{out} already exists and is not empty: merge into a new dir")
    loaded = [(d, *_load(d)) for d in dirs]
    mismatches = []
    for key, label in CHECKED:
        values = {d.name: env.get(key) for d, env, _ in loaded}
        if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
            mismatches.append(f"{label} differs: " + ", ".join(f"{n}={v}" for n, v in values.items()))
    inits = {d.name: sorted({r.get("init") for r in rows if r.get("init")}) for d, _, rows in loaded}
    if len({tuple(v) for v in inits.values() if v}) > 1:
        mismatches.append("init differs: " + ", ".join(f"{n}={'/'.join(v)}" for n, v in inits.items()))
    if mismatches and not allow_mismatch:
        raise SpecError(f"shards do not match ({mismatches[0]}); pass --allow-mismatch to merge anyway")
    seen: dict[tuple, str] = {}
    merged = []
    for d, env, rows in loaded:
        for row in rows:
            if row.get("status") == "unavailable":  # a family's env that lacks this framework
                continue
            key = (row["cell"], row.get("repeat") or 0, row.get("attempt") or 0)
            if key in seen:
                raise SpecError(f"{row['cell']} (repeat {key[1]}, attempt {key[2]}) is in both {seen[key]} "
                                f"and {d}: a merged run keeps one row per process")
            seen[key] = str(d)
            row.setdefault("host", host_of(env))
            row["shard"] = d.name
            merged.append(row)
    out.mkdir(parents=True, exist_ok=True)
    for row in merged:
        append_row(out / "results.jsonl", row)
    for d, _, _ in loaded:  # per-process folders: logs, ONNX files, steps.json
        if (d / "cells").is_dir():
            shutil.copytree(d / "cells", out / "cells", dirs_exist_ok=True)
    first = loaded[0][1]
    hosts = []
    for d, env, _ in loaded:
        host = host_of(env)
        host["shard"] = d.name
        hosts.append(host)
    env = {**first, "shards": [str(d) for d in dirs], "hosts": hosts, "merge_mismatches": mismatches,
           "versions": {k: v for _, e, _ in loaded for k, v in (e.get("versions") or {}).items()}}
    (out / "environment.json").write_text(json.dumps(env, indent=1))
    return {"rows": len(merged), "shards": len(dirs), "hosts": len({h.get("hostname") for h in hosts}),
            "mismatches": mismatches}


def host_of(env: dict) -> dict:
    return {k: env.get(k) for k in ("hostname", "cpu", "cores", "memory_gb", "gpu", "os", "threads")}
