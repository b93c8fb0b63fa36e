"""The HTML report rendered from a real smoke run: self-contained, complete, escaped, comparable."""
from __future__ import annotations

import base64
import copy
import io
import json
import re
import shutil
import subprocess
import sys

import pandas as pd

from harness import cli
from harness.matrix.registry import NOT_APPLICABLE
from reports import idioms, render
from plotly.offline import get_plotlyjs
from report_helpers import FIXTURE, HOSTILE, read_jsonl, write_jsonl

MAX_BYTES = 10 * 2**20


def test_self_contained_and_small(report_path, report_html):
    assert report_path.stat().st_size < MAX_BYTES
    # nothing is fetched: no external script, stylesheet, font, image or frame
    external = re.findall(r"""<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*["']?(?!data:|#)[^"'\s>]+""",
                          report_html, flags=re.I)
    assert external == []
    assert "@import" not in report_html and "url(http" not in report_html
    assert report_html.count(get_plotlyjs()[:300]) == 1  # plotly.js inlined, once


def test_every_section(report_html, fixture_rows):
    for section in ("overview", "matrix", "onnx", "parity", "defaults", "idioms", "data"):
        assert f'id="{section}"' in report_html, section
    for task in {r["task"] for r in fixture_rows if r["status"] == "ok"}:
        assert f'id="task-{task.replace("_", "-")}"' in report_html, task
    # header: machine, versions, settings
    for label in ("CPU", "Cores", "Memory", "Python", "Threads", "Precision", "Profile", "Git commit"):
        assert f"<dt>{label}</dt>" in report_html, label
    assert "torch" in report_html and "onnxruntime" in report_html


def test_charts_are_embedded_as_valid_figures(report_html):
    blobs = re.findall(r'<script type="application/json" id="(chart-\d+)-data">(.*?)</script>', report_html, re.S)
    assert len(blobs) >= 10
    for chart_id, text in blobs:
        fig = json.loads(text)
        assert fig["data"], chart_id
        assert f'id="{chart_id}" data-figure="{chart_id}-data"' in report_html


def test_results_are_escaped(report_html):
    assert HOSTILE not in report_html
    assert "<script>alert" not in report_html and "<img src=x" not in report_html
    assert "<b>evil</b>" not in report_html
    assert "&lt;script&gt;alert(" in report_html  # shown, as text


def test_matrix_shows_errors_and_reasons(report_html, fixture_rows):
    for row in fixture_rows:
        if row["status"] in ("failed", "timeout", "not_applicable", "unavailable") and row.get("error"):
            escaped = row["error"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert escaped[:60] in report_html, row["cell"]
    assert NOT_APPLICABLE[("x2_descent", "lightning")] in report_html
    for status in ("st-ok", "st-not_applicable"):
        assert f'class="chip {status}"' in report_html


def test_csv_downloads_decode(report_html):
    links = re.findall(r'download="([^"]+\.csv)" href="data:text/csv;charset=utf-8;base64,([^"]+)"', report_html)
    names = {n for n, _ in links}
    assert {"matrix.csv", "results.csv", "onnx_parity.csv", "defaults.csv"} <= names
    for name, data in links:
        df = pd.read_csv(io.StringIO(base64.b64decode(data).decode()))
        assert len(df.columns) > 1, name


def test_linreg_curve_agreement(report_html, fixture_rows):
    if any(r["task"] == "linear_regression" and r["status"] == "ok" and r.get("mode") == "full-batch"
           for r in fixture_rows):
        assert "Full-batch loss-curve agreement across frameworks" in report_html


def test_idiom_guide_from_the_files(report_html):
    guides = idioms.guides()
    assert guides, "no implementation files found"
    for g in guides:
        assert f'class="guide" data-guide="{g.task}"' in report_html
        for col in g.columns:
            assert f'data-col="{col.key}"' in report_html
            assert col.path in report_html
    x2 = next(g for g in guides if g.task == "x2_descent")
    pytorch = next(c for c in x2.columns if c.key == "pytorch")
    assert "backward" in pytorch.phases["step"]  # highlighted text of the `# %% step` cell


def test_split_phases_keeps_line_numbers():
    source = '"""doc"""\nimport x\n\n\n# %% model\ndef f(x):\n    return x\n\n# %% train\ndef train():\n    pass\n'
    parts = idioms.split_phases(source)
    assert [(p, start) for p, start, _ in parts] == [("setup", 1), ("model", 6), ("train", 10)]
    assert parts[1][2] == "def f(x):\n    return x"


def test_compare_two_runs(run_dir, tmp_path):
    rows = read_jsonl(run_dir / "results.jsonl")
    slower = next(r for r in rows if r["status"] == "ok" and (r["timing"].get("step_s") or {}).get("n", 0) > 4)
    b_dir = tmp_path / "b"
    shutil.copytree(run_dir, b_dir)
    b_rows = copy.deepcopy(rows)
    for r in b_rows:
        if r["cell"] == slower["cell"]:
            s = r["timing"]["step_s"]
            s["median"] = s["median"] * 3 + 10 * (s["iqr"] or 0)
    write_jsonl(b_dir / "results.jsonl", b_rows)
    out = render.render([run_dir, b_dir], tmp_path / "cmp.html")
    text = out.read_text()
    assert 'id="comparison"' in text
    assert "v-slower" in text and "cmp-slower" in text
    assert "within noise" in text  # the unchanged cells
    section = render.comparison_section(render.load_run(run_dir), render.load_run(b_dir))
    verdicts = {(i["framework"], i["variant"], i["config"]): i["verdict"] for i in section["table"].rows}
    assert sum(v == "slower" for v in verdicts.values()) == 1
    assert not any(v == "faster" for v in verdicts.values())


def test_cli_report(run_dir, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert cli.main(["report", str(run_dir), "-o", str(out)]) == 0
    assert out.exists() and str(out) in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path / "nope")]) == 2


def test_reports_import_no_framework():
    code = ("import sys, reports.render, reports.idioms, reports.charts; "
            "bad = [m for m in ('torch', 'tensorflow', 'jax', 'keras', 'flax', 'lightning') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_sweeps_and_failures_from_the_fixture(report_html, fixture_rows):
    """The fixture holds a batch-size sweep, a timeout and a diverged cell (see make_fixture.py)."""
    swept = {k for r in fixture_rows if r["status"] == "ok" for k in (r.get("params") or {})}
    assert "batch_size" in swept
    assert "Training throughput vs batch_size" in report_html and "Test accuracy vs batch_size" in report_html
    statuses = {r["status"] for r in fixture_rows}
    assert {"ok", "failed", "timeout", "not_applicable"} <= statuses
    assert 'class="chip st-timeout"' in report_html and 'class="chip st-failed"' in report_html


def test_dedupe_keeps_real_results_over_unavailable():
    ok = {"cell": "t/f/v/cpu", "status": "ok"}
    unavailable = {"cell": "t/f/v/cpu", "status": "unavailable", "error": "not installed in this environment: x"}
    later = {"cell": "t/f/v/cpu", "status": "failed"}
    from reports.data import dedupe

    assert dedupe([ok, unavailable]) == [ok]
    assert dedupe([unavailable, ok]) == [ok]
    assert dedupe([unavailable]) == [unavailable]
    assert dedupe([ok, later]) == [later]  # a re-run replaces the earlier result


def test_empty_run_renders(tmp_path):
    (tmp_path / "results.jsonl").write_text("")
    out = render.render([tmp_path], tmp_path / "r.html")
    assert 'id="matrix"' in out.read_text()


def test_parity_section_from_parity_jsonl(report_html):
    rows = read_jsonl(FIXTURE / "parity.jsonl")
    columns = [r for r in rows if r.get("kind") == "column"]
    assert columns, "the fixture has no parity columns (make_fixture.py --parity-only)"
    assert 'id="parity"' in report_html
    for group in {r["group"] for r in columns}:
        assert f"Step losses from shared weights — {group}" in report_html
    section = report_html[report_html.index('id="parity"'):report_html.index('id="defaults"')]
    assert section.count('class="badge st-pass"') + section.count('class="badge st-fail"') == sum(
        r.get("passed") is not None for r in columns)


# --------------------------------------------------------------------------------------------------
# the cross-framework ONNX check (onnx_cross.json, written by `python -m harness.checks.onnx_cross`)
# --------------------------------------------------------------------------------------------------
def _cross_part(html: str) -> str:
    start = html.index('id="onnx-cross"')
    return html[start:html.index('id="parity"', start)]


def test_onnx_cross_subsection(report_html):
    from reports.data import task_title
    from reports.format import fmt_value

    data = json.loads((FIXTURE / "onnx_cross.json").read_text())
    assert data["groups"], "the fixture's onnx_cross.json has no groups"
    assert "Cross-framework ONNX check" in report_html
    part = _cross_part(report_html)
    assert data["onnxruntime"] in part
    assert part.count('class="cross-group"') == len(data["groups"])
    for g in data["groups"]:
        head = " · ".join(str(x) for x in (task_title(g["task"]), g.get("dataset"), g.get("mode")) if x)
        assert f"{head} · init {g['init']}" in part, head
        verdict = {True: "ok", False: "wide", None: "no file"}[g.get("within_tolerance")]
        assert f'<span class="badge v-{verdict.replace(" ", "-")}">{verdict}</span>' in part
        if "accuracy_spread_points" in g:
            assert f"accuracy spread {g['accuracy_spread_points']:.2f} points" in part
            assert f"min argmax agreement {100 * g['min_argmax_agreement']:.2f} %" in part
        if "mse_spread_pct" in g:
            assert f"test-MSE spread {g['mse_spread_pct']:.3f} %" in part
        if "max_abs_diff_overall" in g:
            assert f"max |Δ| {g['max_abs_diff_overall']:.2e}" in part
        for c in g["columns"]:
            assert f"<td>{c['variant']}</td>" in part
            if "ort_test_accuracy" in c:
                assert f'<td class="num">{fmt_value(c["ort_test_accuracy"], "pct2")}</td>' in part
                assert f'<td class="num">{fmt_value(c["native_test_accuracy"], "pct2")}</td>' in part
            if "ort_test_mse" in c:
                assert f'<td class="num">{fmt_value(c["ort_test_mse"], "num")}</td>' in part
    # one per group: pairwise agreement for classifiers, max |Δ| where the columns share their weights
    assert ("min argmax agreement</th>" in part) == any("argmax_agreement" in g for g in data["groups"])
    assert ("max |Δ| vs the others</th>" in part) == any("max_abs_diff" in g for g in data["groups"])
    assert part.count('download="onnx_cross_') == sum(bool(g["columns"]) for g in data["groups"])


def test_onnx_cross_values_from_the_file_are_escaped(run_dir, tmp_path):
    """A failed column, a cell without a file and a variant that are HTML: shown as text."""
    out_dir = tmp_path / "run"
    shutil.copytree(run_dir, out_dir)
    data = json.loads((FIXTURE / "onnx_cross.json").read_text())
    g = data["groups"][0]
    bad = copy.deepcopy(g["columns"][0])
    bad.update(cell="x/<b>evil</b>", variant="<b>evil</b>", status="failed", error=HOSTILE)
    for key in ("ort_test_accuracy", "ort_test_mse"):
        bad.pop(key, None)
    g["columns"].append(bad)
    g["not_run"].append({"cell": "mnist_mlp/<i>x</i>/cpu", "status": "failed", "onnx_status": None, "error": HOSTILE})
    (out_dir / "onnx_cross.json").write_text(json.dumps(data))
    html = render.render([out_dir], tmp_path / "r.html").read_text()
    part = _cross_part(html)
    assert HOSTILE not in html and "<b>evil</b>" not in html and "<i>x</i>" not in html
    assert "&lt;b&gt;evil&lt;/b&gt;" in part and "&lt;i&gt;x&lt;/i&gt;" in part
    assert "&lt;script&gt;alert(" in part
    assert "Without a file (1)" in part and 'class="badge st-failed"' in part


def test_onnx_cross_missing_or_corrupt(run_dir, tmp_path):
    from reports.data import load_run

    for name, content in (("missing", None), ("truncated", '{"schema": 1, "groups": [{"task": '),
                          ("not-json", "\x00\xff garbage"), ("wrong-shape", '{"groups": {"a": 1}}'),
                          ("a-list", "[1, 2]")):
        out_dir = tmp_path / name
        shutil.copytree(run_dir, out_dir)
        if content is None:
            (out_dir / "onnx_cross.json").unlink()
        else:
            (out_dir / "onnx_cross.json").write_text(content, encoding="utf-8")
        run = load_run(out_dir)
        assert run.onnx_cross is None, name
        assert bool(run.notes) == (content is not None), name
        html = render.render([out_dir], tmp_path / f"{name}.html").read_text()
        assert 'id="onnx"' in html and 'id="data"' in html, name
        assert "Cross-framework ONNX check" not in html, name
        if content is not None:
            assert "onnx_cross.json" in html, name  # the note says why it is not shown


def test_onnx_cross_without_onnx_rows(tmp_path):
    """A run whose rows have no onnx block still shows the cross check it has."""
    (tmp_path / "results.jsonl").write_text("")
    shutil.copy(FIXTURE / "onnx_cross.json", tmp_path / "onnx_cross.json")
    html = render.render([tmp_path], tmp_path / "r.html").read_text()
    assert 'id="onnx"' in html and "Cross-framework ONNX check" in html


def test_speed_against_the_fastest_column_and_the_roofline():
    from reports.per_task import mnist_table_rows, speed_note

    def row(framework, step_s, secondary=False, params=None):
        return {"framework": framework, "variant": "v", "dataset": "mnist", "status": "ok", "secondary": secondary,
                "params": params, "timing": {"step_s": {"median": step_s}},
                "metrics": {"train_flops_per_step": 128_909_312, "epochs_trained": 3, "stopped_at_target": True}}

    rows = [row("tf1", 0.0015), row("keras-torch", 0.0033), row("pytorch", 0.0001, secondary=True),
            row("jax", 0.0001, params={"batch_size": 32})]
    note = speed_note(rows[:3], roofline=100.0)
    # the secondary row is faster but is no column's own idiom at the spec's settings
    assert note.startswith("Fastest step: tf1/v, 1.50 ms = 86 GFLOP/s, 86 % of this run's sgemm roofline")
    assert note.endswith("Over 2× its step time: keras-torch/v ×2.2.")
    table = {r["framework"]: r for r in mnist_table_rows(rows, roofline=100.0)}
    assert table["keras-torch"]["vs_fastest"] == 0.0033 / 0.0015
    assert table["tf1"]["gflops"] == 128_909_312 / 0.0015 / 1e9 and table["tf1"]["roofline_pct"] == table["tf1"]["gflops"] / 100
    assert table["jax"]["vs_fastest"] is None  # a sweep cell runs other settings: no ratio
    assert table["tf1"]["epochs"] == "3*"
    assert "Every column within 2×" in speed_note([row("tf1", 0.0015), row("jax", 0.0029)], roofline=None)
