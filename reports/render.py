"""`dlrosetta report RUN_DIR [RUN_DIR_B] [-o FILE]`: one self-contained HTML file.

results.jsonl + environment.json (+ parity.jsonl when present) -> pandas -> Jinja2 template with
Plotly charts (plotly.js inlined from the plotly package), Pygments-highlighted implementation files
for the idiom guide, and CSV downloads as data: URLs. No network at view time, no framework import.
With two run dirs the second is shown against the first (step-time ratio per cell, with a marker
where the difference is beyond the measured noise).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import jinja2
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from harness.matrix.tasks import TASKS
from reports import charts, idioms, sources
from reports.compare import comparison_section
from reports.data import STATUSES, load_run
from reports.format import clean, csv_href_frame, fmt_num, fmt_value
from reports.ops import ops_section
from reports.per_task import task_sections
from reports.sections import (STATUS_LABELS, defaults_section, deploy_section, environment_section, matrix_section, onnx_section,
                              parity_section, precision_section, stability_banner)

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------------
# render
# --------------------------------------------------------------------------------------------------
def template_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt_value
    env.filters["clean"] = clean
    env.filters["num"] = fmt_num
    env.filters["fwcolor"] = charts.color
    env.filters["slug"] = lambda s: "".join(c if c.isalnum() else "-" for c in str(s)).strip("-").lower()
    return env


def render(run_dirs, output=None) -> Path:
    """Render one run dir (or two: the second against the first) into one HTML file; returns its path."""
    run_dirs = [Path(d) for d in ([run_dirs] if isinstance(run_dirs, (str, Path)) else run_dirs)]
    runs = [load_run(d) for d in run_dirs]
    run = runs[-1]
    out = Path(output) if output else run_dirs[-1] / ("report.html" if len(runs) == 1 else "comparison.html")
    tasks_in_run = [t for t in TASKS if any(r.get("task") == t for r in run.rows)]
    guide = idioms.guides([t for t in TASKS], site_url=sources.site_url())  # linked when published
    ctx = {
        "title": "dlrosetta benchmark report" if len(runs) == 1 else "dlrosetta comparison report",
        "generated": time.strftime("%Y-%m-%d %H:%M"),
        "run_id": run.run_id,
        "env": environment_section(run),
        "matrix": matrix_section(run),
        "stability": stability_banner(run),
        "read_notes": [n for r in runs for n in r.notes if "line" in n],
        "tasks": task_sections(run),
        "onnx": onnx_section(run),
        "deploy": deploy_section(run),
        "precision": precision_section(run),
        "parity": parity_section(run),
        "ops": ops_section(run),
        "defaults": defaults_section(),
        "guides": guide,
        "guide_default": next((g.task for g in guide if len(g.columns) > 1 and g.task in tasks_in_run),
                              guide[0].task if guide else None),
        "compare": comparison_section(runs[0], runs[1]) if len(runs) == 2 else None,
        "all_csv": csv_href_frame(run.frame),
        "statuses": [(s, STATUS_LABELS[s]) for s in STATUSES],
        "css": Markup((HERE / "static" / "report.css").read_text() + "\n" + idioms.highlight_css()),
        "js": Markup(_script_safe((HERE / "static" / "report.js").read_text())),
        "plotly_js": Markup(_script_safe(get_plotlyjs())),
    }
    text = template_env().get_template("report.html.j2").render(**ctx)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    if len(runs) == 2:  # the verdicts for machines: one entry per cell, beside the HTML
        from reports.compare import comparison_json

        (out.parent / "comparison.json").write_text(json.dumps(comparison_json(runs[0], runs[1]), indent=1))
    return out


def _script_safe(js: str) -> str:
    """Inline JavaScript must not contain a closing script tag."""
    return js.replace("</script", "<\\/script")

