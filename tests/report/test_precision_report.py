"""The report's precision table: a cell run in fp32, mixed and bf16 is one row, its accuracy, step time and
read-back dtypes side by side, the step time against fp32's, and a precision that failed named with its error."""
import copy
import json
import shutil

from report_helpers import FIXTURE, read_jsonl, write_jsonl

from reports import render


def precision_row(row, asked, step_s, accuracy, params, compute, status="ok", error=None):
    out = copy.deepcopy(row)
    out["cell"] += f"/precision={asked}"
    out["params"] = {**(out.get("params") or {}), "precision": asked}
    out["spec"]["precision"] = asked
    out["status"], out["error"] = status, error
    out["timing"]["step_s"]["median"] = step_s
    out["metrics"]["test_accuracy"] = accuracy
    out["precision"] = {"requested": asked, "params": params, "compute": compute, "status": "ok"}
    return out


def section_of(html, name):
    section = html[html.index(f'<section id="{name}">'):]
    return section[:section.index("</section>")]


def test_precision_section_sets_each_precision_beside_fp32(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    rows = read_jsonl(FIXTURE / "results.jsonl")
    write_jsonl(run_dir / "results.jsonl", rows)
    assert 'id="precision"' not in render.render(run_dir, tmp_path / "plain.html").read_text()  # fp32 only
    base = next(r for r in rows if r["task"] == "mnist_mlp" and r["status"] == "ok" and not r.get("params"))
    base["spec"]["precision"] = "fp32"
    base["timing"]["step_s"]["median"] = 0.002
    base["metrics"]["test_accuracy"] = 0.9612
    rows += [precision_row(base, "mixed", 0.003, 0.9588, "float32", "bfloat16"),
             precision_row(base, "bf16", 0.005, 0.9104, "bfloat16", "bfloat16", status="failed",
                           error="PrecisionMismatch: --precision bf16 expects bfloat16 weights")]
    write_jsonl(run_dir / "results.jsonl", rows)
    env = json.loads((run_dir / "environment.json").read_text())
    (run_dir / "environment.json").write_text(json.dumps({**env, "precision": "fp32,mixed,bf16", "cpu_bf16": []}))
    html = render.render(run_dir, tmp_path / "precision.html").read_text()
    assert "fp32,mixed,bf16 (this CPU has no bfloat16 instructions: bf16 is emulated)" in html
    assert '<a href="#precision">' in html
    section = section_of(html, "precision")
    assert "mixed accuracy" in section and "bf16 / fp32 step" in section
    assert "96.12 %" in section and "95.88 %" in section and "×1.50" in section  # 3 ms against 2 ms
    assert "float32 / bfloat16" in section
    assert "PrecisionMismatch" in section and "91.04 %" not in section  # a failed cell shows no accuracy
    # the precision cells stay out of the sweep charts (precision is not a number to plot against)
    assert "vs precision" not in html
