"""The report's readers fuzzed with Hypothesis: results.jsonl and environment.json with random strings,
HTML, NaN/inf, huge numbers, missing or wrongly typed fields, lines that are not JSON or not objects.
The report always renders: unusable lines are listed with file and line, and no string from the data
reaches the page unescaped."""
import copy
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_helpers import FIXTURE, read_jsonl

from reports import render

SCRIPT = "<script>alert('x')</script>"
junk = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                 st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, SCRIPT, "", "ok", "<b>x</b>"]),
                 st.text(max_size=20), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                                           st.integers(), max_size=2))
FIELDS = ["cell", "task", "framework", "variant", "status", "error", "params", "metrics", "timing", "memory",
          "onnx", "stability", "repeat", "dataset", "mode", "device", "spec", "divergence", "attempt"]
NESTED = ["metrics.test_accuracy", "timing.step_s", "timing.step_s.median", "timing.first_step_s",
          "memory.peak_rss_mb", "metrics.train_loss_curve", "stability.flag", "stability.reasons", "onnx.status"]
BASE = read_jsonl(FIXTURE / "results.jsonl")


def set_path(row, path, value):
    parts = path.split(".")
    cur = row
    for part in parts[:-1]:
        if not isinstance(cur.get(part), dict):
            cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value


mutation = st.one_of(st.tuples(st.sampled_from(FIELDS), junk), st.tuples(st.sampled_from(NESTED), junk),
                     st.tuples(st.sampled_from(FIELDS), st.just("<delete>")))
line = st.one_of(
    st.tuples(st.integers(0, len(BASE) - 1), st.lists(mutation, max_size=4)).map(lambda t: ("row", t)),
    st.sampled_from(["not json", "[1, 2]", "42", '"text"', "null", "{", SCRIPT]).map(lambda t: ("raw", t)))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, min_size=1, max_size=6), st.one_of(st.just(None), junk.map(json.dumps)))
def test_report_renders_any_results_file(lines, env_text):
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        shutil.copytree(FIXTURE, run_dir)
        text = []
        for kind, payload in lines:
            if kind == "raw":
                text.append(payload)
                continue
            index, mutations = payload
            row = copy.deepcopy(BASE[index])
            for path, value in mutations:
                if value == "<delete>":
                    row.pop(path, None)
                else:
                    set_path(row, path, value)
            text.append(json.dumps(row, allow_nan=True))
        (run_dir / "results.jsonl").write_text("\n".join(text) + "\n")
        if env_text is not None:
            (run_dir / "environment.json").write_text(env_text)
        html = render.render([run_dir], Path(tmp) / "report.html").read_text()
        assert SCRIPT not in html  # every string from the data is escaped
        assert "</html>" in html
