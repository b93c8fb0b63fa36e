"""What the tracking sinks log of one result row, with the names both sinks share.

Everything is read from the row (results.jsonl) and the process's `steps.json`: no framework is
imported. Steps and epochs are counted from 1 (the value after N steps, after N epochs).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from harness.checks.onnx_parity import ONNX_FILE
from harness.matrix.registry import slug_of

# per-epoch curves of `metrics`, by the name they are logged under (`epoch/<name>`)
CURVES = {"train_loss_curve": "train_loss", "loss_curve": "train_loss", "test_loss_curve": "test_loss",
          "test_accuracy_curve": "test_accuracy"}
# the row's blocks whose numbers are logged once per process, and the prefix they get
SUMMARIES = {"metrics": "final", "timing": "time", "memory": "memory", "onnx": "onnx", "deploy": "deploy",
             "stability": "stability"}
SKIP_SUMMARY = {"thresholds", "limit_gb", "batches"}  # settings and per-batch detail, not results


def tracked(row) -> bool:
    """Rows the sinks log: every finished process but `unavailable` ones (not run in this env; the
    env that has the framework runs and logs them)."""
    return isinstance(row, dict) and "cell" in row and row.get("status") not in (None, "unavailable")


def key(row: dict) -> str:
    """One process of a run: cell, repeat and attempt (what --resume must not log twice)."""
    return f"{row['cell']}#repeat={row.get('repeat') or 0}#attempt={row.get('attempt') or 0}"


def folder(row: dict) -> str:
    """The process's folder in the run dir (rows from before `dir` existed: the cell's folder)."""
    return row.get("dir") or "cells/" + slug_of(row["cell"])


def name(row: dict) -> str:
    """The process's name: `<cell slug>` or `<cell slug>/repeat-<r>[-attempt-<a>]`."""
    return folder(row).removeprefix("cells/")


def start_s(row: dict) -> float:
    try:
        return time.mktime(time.strptime(row["started_at"], "%Y-%m-%dT%H:%M:%S%z"))
    except (KeyError, TypeError, ValueError):
        return time.time()


def params(row: dict, env: dict) -> dict:
    """The process's settings as flat scalars: what it is, then its spec (None values left out)."""
    threads = row.get("threads") or {}
    flat = {k: row.get(k) for k in ("task", "framework", "variant", "dataset", "mode", "device", "profile",
                                    "init", "repeat", "attempt")}
    flat.update(timing_only=bool(row.get("timing_only")), threads=threads.get("threads"),
                precision=env.get("precision"), **(row.get("spec") or {}))
    return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v)
            for k, v in flat.items() if v is not None}


def tags(row: dict, env: dict) -> dict[str, str]:
    """Where and how it ran, and how it ended."""
    host = row.get("host") or {}
    stability = row.get("stability") or {}
    found = {"cell": row["cell"], "status": row.get("status"), "error": row.get("error"),
             "stability": stability.get("flag"), "stability_reasons": "; ".join(stability.get("reasons") or []),
             "divergence": (row.get("divergence") or {}).get("reason"),
             "onnx_status": (row.get("onnx") or {}).get("status"), "device": row.get("device"),
             "git_commit": env.get("git_commit"), "cpu": host.get("cpu") or env.get("cpu"),
             "hostname": host.get("hostname") or env.get("hostname"), "gpu": host.get("gpu"),
             "python": env.get("python"), "dlrosetta.run_id": row.get("run_id") or env.get("run_id")}
    found.update({f"version.{pkg}": v for pkg, v in (row.get("versions") or {}).items()})
    return {k: str(v)[:5000] for k, v in found.items() if v not in (None, "")}


def run_tags(env: dict) -> dict[str, str]:
    """The matrix run's own tags (its parent run)."""
    found = {k: env.get(k) for k in ("run_id", "git_commit", "cpu", "cores", "hostname", "gpu", "profile",
                                     "device", "threads", "precision", "python", "shard")}
    found = {("dlrosetta.run_id" if k == "run_id" else k): v for k, v in found.items()}
    settings = env.get("settings") or {}
    found.update({f"settings.{k}": json.dumps(v) if isinstance(v, list) else v for k, v in settings.items()})
    return {k: str(v)[:5000] for k, v in found.items() if v not in (None, "", "[]")}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summary(row: dict) -> dict[str, float]:
    """One number per result: `final/test_accuracy`, `time/step_s` (the steady-state median),
    `time/first_step_s` (with compile), `memory/peak_rss_mb`, `onnx/max_abs_diff`, ..."""
    out = {}
    for block, prefix in SUMMARIES.items():
        for k, v in (row.get(block) or {}).items():
            if k in SKIP_SUMMARY:
                continue
            if isinstance(v, dict) and _number(v.get("median")):
                out[f"{prefix}/{k}"] = v["median"]
            elif isinstance(v, dict):
                for sub, value in v.items():
                    value = value.get("median") if isinstance(value, dict) else value
                    if _number(value):
                        out[f"{prefix}/{k}_{sub}"] = value
            elif _number(v):
                out[f"{prefix}/{k}"] = v
    return out


def series(row: dict, run_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Curves as (step, value, seconds into training): `epoch/<curve>` per epoch and `step/loss`,
    `step/time_s` per step from steps.json."""
    out: dict[str, list] = {}
    metrics = row.get("metrics") or {}
    epoch_clock = _clock((row.get("timing") or {}).get("epoch_s") or [])
    for curve, tag in CURVES.items():
        if isinstance(metrics.get(curve), list):
            out[f"epoch/{tag}"] = _points(metrics[curve], epoch_clock)
    if epoch_clock:
        out["epoch/time_s"] = _points(row["timing"]["epoch_s"], epoch_clock)
    steps = read_steps(run_dir / folder(row))
    step_clock = _clock(steps.get("step_s") or [])
    for field, tag in (("losses", "step/loss"), ("step_s", "step/time_s")):
        if steps.get(field):
            out[tag] = _points(steps[field], step_clock)
    return {tag: points for tag, points in out.items() if points}


def _clock(durations: list) -> list[float]:
    total, clock = 0.0, []
    for d in durations:
        total += d if _number(d) else 0.0
        clock.append(total)
    return clock


def _points(values: list, clock: list[float]) -> list[tuple[int, float, float]]:
    return [(i + 1, float(v), clock[i] if i < len(clock) else 0.0) for i, v in enumerate(values)
            if _number(v) and not math.isinf(v)]


def read_steps(folder: Path) -> dict:
    try:
        steps = json.loads((folder / "steps.json").read_text())
    except (OSError, ValueError):
        return {}
    return steps if isinstance(steps, dict) else {}


def artifacts(row: dict, run_dir: Path) -> list[Path]:
    """The process's log.txt and, where it exported one, its ONNX model (with its external data file)."""
    where = run_dir / folder(row)
    return [p for p in [where / "log.txt", *sorted(where.glob(ONNX_FILE + "*"))] if p.is_file()]
