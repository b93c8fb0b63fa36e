"""The report's operator profile (`--profile-ops` rows): shown only when a row has one, top five per cell."""
import shutil

from report_helpers import FIXTURE, read_jsonl, write_jsonl

from reports import render

TOP = [{"op": f"op_{i}", "ms": 10.0 - i, "ms_per_step": (10.0 - i) / 5, "share": (10.0 - i) / 55, "calls": 5}
       for i in range(10)]


def test_top_five_operators_per_profiled_cell(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    rows = read_jsonl(FIXTURE / "results.jsonl")
    plain = render.render(run_dir, tmp_path / "plain.html").read_text()
    assert 'id="ops"' not in plain
    target = next(r for r in rows if r["task"] == "mnist_mlp" and r["status"] == "ok")
    target["ops_profile"] = {"status": "ok", "profiler": "torch.profiler", "steps": [11, 15],
                             "trace": ["ops_trace/trace.json"], "top": TOP, "ops_ms_total": 55.0}
    write_jsonl(run_dir / "results.jsonl", rows)
    html = render.render(run_dir, tmp_path / "ops.html").read_text()
    section = html[html.index('<section id="ops">'):]
    section = section[:section.index("</section>")]
    assert "torch.profiler" in section and "11–15" in section and "ops_trace/trace.json" in section
    assert "op_0 · 2 · 18%" in section and "op_4" in section and "op_5" not in section  # five shown of ten
