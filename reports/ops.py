"""The operator profile (`dlrosetta run --profile-ops`): the five operators that took the most time in a
few steady-state steps of each cell, as the framework's own profiler names them (harness.measuring.profile_ops)."""
from __future__ import annotations

from reports.data import Run, get
from reports.format import Col, table

SHOWN = 5
OPS_COLS = [
    Col("task", "task"), Col("framework", "framework"), Col("variant", "variant"), Col("config", "config"),
    Col("profiler", "profiler"), Col("steps", "steps traced"),
    Col("ops_ms", "ops per step (ms)", "g", "the operators' own time summed over the traced steps, per step; "
                                            "threads running side by side each add theirs"),
    *(Col(f"op{i}", f"#{i + 1} op · ms/step · share", "detail") for i in range(SHOWN)),
    Col("trace", "trace (in the cell's folder)", "detail"),
]


def ops_section(run: Run) -> dict | None:
    rows = [r for r in run.rows if isinstance(r.get("ops_profile"), dict)]
    if not rows:
        return None
    out = []
    for r in rows:
        p = r["ops_profile"]
        window = p.get("steps") or []
        steps = window[1] - window[0] + 1 if len(window) == 2 else None
        item = {"task": r.get("task"), "framework": r.get("framework"), "variant": r.get("variant"),
                "config": " ".join(t for t in (r.get("dataset"), r.get("mode")) if t), "profiler": p.get("profiler"),
                "steps": f"{window[0]}–{window[1]}" if steps else p.get("reason") or p.get("error") or p.get("status"),
                "ops_ms": get(p, "ops_ms_total") / steps if steps and get(p, "ops_ms_total") else None,
                "trace": ", ".join(p.get("trace") or [])}
        for i, op in enumerate((p.get("top") or [])[:SHOWN]):
            item[f"op{i}"] = f"{op['op']} · {op['ms_per_step']:.3g} · {op['share']:.0%}"
        out.append(item)
    return {"table": table(OPS_COLS, out, "ops_profile.csv")}
