"""`dlrosetta report A B`: B against A, cell by cell, with the measured noise deciding what counts."""
from __future__ import annotations

import math

from harness.registry import FRAMEWORKS
from reports import charts
from reports.data import (Run, config_key, first_of, framework_title, get, number, params_text, series_label,
                          task_title)
from reports.format import Col, fmt_ms, ms, table
from reports.sections import nice_date

# --------------------------------------------------------------------------------------------------
# comparison of two runs
# --------------------------------------------------------------------------------------------------
NOTCH = 1.57  # McGill, Tukey & Larsen (1978): medians differ (~95 %) when |Δ| > 1.57 (IQR_a/√n_a + IQR_b/√n_b)


def noise_threshold(a: dict, b: dict) -> float | None:
    ia, ib = number(a.get("iqr")), number(b.get("iqr"))
    na, nb = number(a.get("n")), number(b.get("n"))
    if None in (ia, ib) or not na or not nb:
        return None
    return NOTCH * (ia / math.sqrt(na) + ib / math.sqrt(nb))


def compare_cell(ra: dict, rb: dict) -> dict:
    """B against A for one cell: steady-state step time with its noise, else the whole train() time
    (full-batch linear regression has one step per epoch, so no steady state and no noise estimate)."""
    sa, sb = get(ra, "timing.step_s", {}) or {}, get(rb, "timing.step_s", {}) or {}
    ma, mb = number(sa.get("median")), number(sb.get("median"))
    measure = "step"
    if not (ma and mb):
        ma, mb, measure = number(get(ra, "timing.train_s")), number(get(rb, "timing.train_s")), "train"
    ratio = mb / ma if ma and mb else None
    thr = noise_threshold(sa, sb) if measure == "step" else None
    if ratio is None:
        verdict = ""
    elif thr is None:
        verdict = "no noise estimate"
    elif abs(mb - ma) > thr:
        verdict = "slower" if mb > ma else "faster"
    else:
        verdict = "within noise"
    detail = (f"{'step' if measure == 'step' else 'train()'}: A {fmt_ms(ma)} → B {fmt_ms(mb)}"
              + (f"; noise ±{fmt_ms(thr)}" if thr is not None else "; one run each, no noise estimate")) if ratio else ""
    return {"ma": ma, "mb": mb, "ratio": ratio, "noise": thr, "verdict": verdict, "measure": measure,
            "detail": detail}


def comparison_section(a: Run, b: Run) -> dict:
    index_a = {r.get("cell"): r for r in a.rows}
    items, grid_rows, bars = [], {}, []
    frameworks = [f for f in FRAMEWORKS if any(r.get("framework") == f for r in a.rows + b.rows)]
    for rb in b.rows:
        ra = index_a.get(rb.get("cell"))
        if ra is None or (ra.get("status") == rb.get("status") == "not_applicable"):
            continue
        c = compare_cell(ra, rb)
        acc_a = number(first_of(ra, "metrics.test_accuracy", "metrics.test_mse"))
        acc_b = number(first_of(rb, "metrics.test_accuracy", "metrics.test_mse"))
        items.append({
            "task": rb.get("task"), "config": " ".join(t for t in (rb.get("dataset"), rb.get("mode"), params_text(rb)) if t),
            "framework": rb.get("framework"), "variant": rb.get("variant"),
            "status_a": ra.get("status"), "status_b": rb.get("status"), "measure": c["measure"],
            "time_a": ms(c["ma"]), "time_b": ms(c["mb"]), "ratio": c["ratio"], "noise": ms(c["noise"]),
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
            Col("ratio", "B / A", "ratio"), Col("noise", "noise (ms)", "ms", "1.57·(IQR_A/√n_A + IQR_B/√n_B)"),
            Col("verdict", "verdict", "verdict"), Col("quality_a", "A acc. / MSE", "num"),
            Col("quality_b", "B acc. / MSE", "num"), Col("quality_delta", "Δ", "sci"),
            Col("peak_a", "A peak RSS (MB)", "mb"), Col("peak_b", "B peak RSS (MB)", "mb")]
    va, vb = a.env.get("versions") or {}, b.env.get("versions") or {}
    version_diff = [(k, va.get(k, "—"), vb.get(k, "—")) for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)]
    counts = {v: sum(i["verdict"] == v for i in items) for v in ("faster", "slower", "within noise", "no noise estimate")}
    chart = charts.ratio_bars(bars, "Time, B relative to A",
                              note="steady-state step time (train() time where a cell has one step per epoch); "
                                   "grey: within the measured noise or no noise estimate")
    return {"a": a.run_id, "b": b.run_id, "a_path": a.path.name, "b_path": b.path.name,
            "table": table(cols, items, "comparison.csv"), "frameworks": [(f, framework_title(f)) for f in frameworks],
            "grid": list(grid_rows.values()), "only_a": only_a, "only_b": only_b, "versions": version_diff,
            "counts": counts, "chart": chart,
            "machine": [("CPU", a.env.get("cpu"), b.env.get("cpu")), ("Cores", a.env.get("cores"), b.env.get("cores")),
                        ("Profile", a.env.get("profile"), b.env.get("profile")),
                        ("Date", nice_date(a.env.get("date")), nice_date(b.env.get("date"))),
                        ("Commit", a.env.get("git_commit"), b.env.get("git_commit"))]}
