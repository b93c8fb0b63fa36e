"""`dlrosetta report A B`: B against A, cell by cell, with the measured noise deciding what counts."""
from __future__ import annotations

import math

from harness.matrix.registry import FRAMEWORKS
from reports import charts, stats
from reports.data import (Run, config_key, first_of, framework_title, get, number, params_text, series_label,
                          task_title)
from reports.format import Col, fmt_ms, ms, table
from reports.sections import nice_date

# --------------------------------------------------------------------------------------------------
# comparison of two runs
# --------------------------------------------------------------------------------------------------
def process_steps(run: Run) -> dict[str, list]:
    """cell -> the step medians of its processes (every repeat; a stable attempt where there is one)."""
    from reports.data import chosen_processes

    out: dict[str, list] = {}
    for (cell, _), row in chosen_processes(run.all_rows or run.rows).items():
        if row.get("status") == "ok":
            out.setdefault(cell, []).append(get(row, "timing.step_s.process_median") or get(row, "timing.step_s.median"))
    return out


def run_noise(steps_a: dict, steps_b: dict) -> tuple[float, int] | None:
    """The between-process noise of two runs: the spread of log step time within a cell, pooled over every
    cell of both (stats.pooled_noise), which every cell's test then uses."""
    return stats.pooled_noise([*steps_a.values(), *steps_b.values()])


def compare_cell(ra: dict, rb: dict, steps_a=None, steps_b=None, noise=None) -> dict:
    """B against A for one cell, on the between-process noise (reports.stats.compare; `noise`: run_noise of
    the two runs): the per-process step medians of each side, else the whole train() time (one value per
    side: the noise floor)."""
    va = [v for v in (steps_a or [get(ra, "timing.step_s.median")]) if number(v)]
    vb = [v for v in (steps_b or [get(rb, "timing.step_s.median")]) if number(v)]
    measure = "step"
    if not (va and vb):
        va, vb, measure = [get(ra, "timing.train_s")], [get(rb, "timing.train_s")], "train"
    c = stats.compare(va, vb, noise=noise if measure == "step" else None)
    ma, mb = stats.process_summary(va)["median"], stats.process_summary(vb)["median"]
    method = (f"pooled t, {c['n_a']} vs {c['n_b']} processes, noise sd {c['noise_sd']:.2f} (df {c['noise_df']})"
              if c["method"] == "pooled t"
              else f"noise floor ±{stats.SINGLE_PROCESS_FLOOR:.0%}, {c['n_a']} vs {c['n_b']} process(es): a floor, "
                   f"not an interval" if c["method"] else "")
    detail = (f"{'step' if measure == 'step' else 'train()'}: A {fmt_ms(ma)} → B {fmt_ms(mb)}; {method}"
              + (f"; 95 % interval of B/A (geometric means) {c['ci'][0]:.2f}–{c['ci'][1]:.2f}" if c.get("ci") else "")
              ) if c["ratio"] else ""
    return {"ma": ma, "mb": mb, "ratio": c["ratio"], "verdict": c["verdict"], "measure": measure,
            "method": method, "ci": c.get("ci"), "n_a": c["n_a"], "n_b": c["n_b"], "detail": detail}


def comparison_json(a: Run, b: Run) -> list[dict]:
    """comparison.json: per cell {"cell", "ratio", "verdict", "method", "n_a", "n_b", "ci"}."""
    index_a = {r.get("cell"): r for r in a.rows}
    steps_a, steps_b = process_steps(a), process_steps(b)
    noise = run_noise(steps_a, steps_b)
    out = []
    for rb in b.rows:
        ra = index_a.get(rb.get("cell"))
        if ra is None or "not_applicable" in (ra.get("status"), rb.get("status")):
            continue
        ok = ra.get("status") == rb.get("status") == "ok"
        c = compare_cell(ra, rb, steps_a.get(rb.get("cell")), steps_b.get(rb.get("cell")), noise) if ok else None
        out.append({"cell": rb.get("cell"), "ratio": c["ratio"] if c else None,
                    "verdict": c["verdict"] if c else "no estimate", "method": c["method"] if c else None,
                    "n_a": c["n_a"] if c else 0, "n_b": c["n_b"] if c else 0, "ci": c["ci"] if c else None})
    return out


def comparison_section(a: Run, b: Run) -> dict:
    index_a = {r.get("cell"): r for r in a.rows}
    steps_a, steps_b = process_steps(a), process_steps(b)
    noise = run_noise(steps_a, steps_b)
    items, grid_rows, bars = [], {}, []
    frameworks = [f for f in FRAMEWORKS if any(r.get("framework") == f for r in a.rows + b.rows)]
    for rb in b.rows:
        ra = index_a.get(rb.get("cell"))
        if ra is None or (ra.get("status") == rb.get("status") == "not_applicable"):
            continue
        c = compare_cell(ra, rb, steps_a.get(rb.get("cell")), steps_b.get(rb.get("cell")), noise)
        acc_a = number(first_of(ra, "metrics.test_accuracy", "metrics.test_mse"))
        acc_b = number(first_of(rb, "metrics.test_accuracy", "metrics.test_mse"))
        items.append({
            "task": rb.get("task"), "config": " ".join(t for t in (rb.get("dataset"), rb.get("mode"), params_text(rb)) if t),
            "framework": rb.get("framework"), "variant": rb.get("variant"),
            "status_a": ra.get("status"), "status_b": rb.get("status"), "measure": c["measure"],
            "time_a": ms(c["ma"]), "time_b": ms(c["mb"]), "ratio": c["ratio"], "noise": c["method"],
            "verdict": c["verdict"], "quality_a": acc_a, "quality_b": acc_b,
            "quality_delta": (acc_b - acc_a) if acc_a is not None and acc_b is not None else None,
            "peak_a": get(ra, "memory.peak_rss_mb"), "peak_b": get(rb, "memory.peak_rss_mb")})
        row = grid_rows.setdefault(config_key(rb), {
            "title": task_title(rb.get("task")),
            "tags": [t for t in (rb.get("dataset"), rb.get("mode"), params_text(rb)) if t],
            "cells": {f: [] for f in frameworks}})
        ok = rb.get("status") == "ok" and ra.get("status") == "ok"
        row["cells"].setdefault(rb.get("framework"), []).append({
            "variant": rb.get("variant"), "ratio": c["ratio"], "verdict": c["verdict"], "ok": ok,
            "status": {"slower": "slower", "faster": "faster"}.get(c["verdict"], "same") if ok else rb.get("status"),
            "label": f"A {ra.get('status')} → B {rb.get('status')}" if not ok else "",
            "detail": c["detail"] if ok else (rb.get("error") or ra.get("error") or "")})
        if ok and c["ratio"]:
            bars.append((f"{rb.get('task')} · {series_label(rb, True)}"
                         + "".join(f" · {rb[k]}" for k in ("dataset", "mode") if rb.get(k)),
                         c["ratio"], c["verdict"] in ("slower", "faster"), rb.get("framework")))
    frameworks = [f for f in frameworks if any(row["cells"].get(f) for row in grid_rows.values())]
    only_a = [r.get("cell") for r in a.rows if r.get("cell") not in {x.get("cell") for x in b.rows}]
    only_b = [r.get("cell") for r in b.rows if r.get("cell") not in index_a]
    cols = [Col("task", "task"), Col("config", "config"), Col("framework", "framework"), Col("variant", "variant"),
            Col("status_a", "A status", "status"), Col("status_b", "B status", "status"),
            Col("measure", "measure", "text", "step: steady-state step median; train: the whole train() call"),
            Col("time_a", "A (ms)", "ms"), Col("time_b", "B (ms)", "ms"),
            Col("ratio", "B / A", "ratio"), Col("noise", "method", "text", "how the noise was judged: a t interval over processes with the noise pooled over the cells, or the single-process noise floor"),
            Col("verdict", "verdict", "verdict"), Col("quality_a", "A acc. / MSE", "num"),
            Col("quality_b", "B acc. / MSE", "num"), Col("quality_delta", "Δ", "sci"),
            Col("peak_a", "A peak RSS (MB)", "mb"), Col("peak_b", "B peak RSS (MB)", "mb")]
    va, vb = a.env.get("versions") or {}, b.env.get("versions") or {}
    version_diff = [(k, va.get(k, "—"), vb.get(k, "—")) for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)]
    counts = {v: sum(i["verdict"] == v for i in items) for v in ("faster", "slower", "same", "no estimate")}
    chart = charts.ratio_bars(bars, "Time, B relative to A",
                              note="steady-state step time (train() time where a cell has one step per epoch); "
                                   "grey: within the measured noise or no noise estimate")
    return {"a": a.run_id, "b": b.run_id, "a_path": a.path.name, "b_path": b.path.name,
            "table": table(cols, items, "comparison.csv"), "frameworks": [(f, framework_title(f)) for f in frameworks],
            "grid": list(grid_rows.values()), "only_a": only_a, "only_b": only_b, "versions": version_diff,
            "counts": counts, "chart": chart, "min_effect": stats.MIN_EFFECT, "floor": stats.SINGLE_PROCESS_FLOOR,
            "machine": [("CPU", a.env.get("cpu"), b.env.get("cpu")), ("Cores", a.env.get("cores"), b.env.get("cores")),
                        ("Profile", a.env.get("profile"), b.env.get("profile")),
                        ("Date", nice_date(a.env.get("date")), nice_date(b.env.get("date"))),
                        ("Commit", a.env.get("git_commit"), b.env.get("git_commit"))]}
