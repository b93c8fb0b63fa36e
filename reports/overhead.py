"""The harness's own share of a run's wall time (issue 17's goal: under 2 % of the default bench).

Per cell process, its wall time (the parent's clock, spawn to exit) is split into the framework's work —
import, build, train (its per-epoch evaluations included) and the final evaluation — the checks the
harness asks for (inference latency, save/load, ONNX, deploy, the precision read-back), and the rest:
the harness itself (interpreter start, loading the arrays, stability probes, writing results)."""
from __future__ import annotations

from reports.data import get, number

FRAMEWORK_PHASES = ("timing.import_s", "timing.build_s", "timing.train_wall_s", "timing.eval_s")


def harness_overhead(rows) -> dict | None:
    """{cells, wall_s, framework_s, checks_s, harness_s, harness_pct, checks_pct} over the rows that carry
    every phase timer (rows of this commit on: older rows have no train_wall_s), else None."""
    framework = checks = wall = 0.0
    n = 0
    for r in rows:
        phases = [number(get(r, k)) for k in FRAMEWORK_PHASES]
        cell_wall = number(get(r, "timing.cell_wall_s"))
        if cell_wall is None or any(p is None for p in phases):
            continue
        n += 1
        wall += cell_wall
        framework += sum(phases)
        checks += number(get(r, "timing.checks_s")) or 0.0
    if not n or wall <= 0:
        return None
    harness = wall - framework - checks
    return {"cells": n, "wall_s": wall, "framework_s": framework, "checks_s": checks, "harness_s": harness,
            "harness_pct": 100 * harness / wall, "checks_pct": 100 * checks / wall}


def overhead_text(rows) -> str | None:
    o = harness_overhead(rows)
    if o is None:
        return None
    return (f"{o['harness_pct']:.1f} % of the cells' wall time ({o['harness_s']:.0f} of {o['wall_s']:.0f} s over "
            f"{o['cells']} cell processes: interpreter start, data, probes, results); the checks (inference, "
            f"save/load, ONNX, deploy) {o['checks_pct']:.1f} %; the rest is the frameworks' import, build, "
            f"train and eval")
