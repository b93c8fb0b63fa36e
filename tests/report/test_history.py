"""`dlrosetta history`: steps across run dirs, on small synthetic run dirs that follow the row contract
(results.jsonl with one row per process, environment.json). Every figure here is made up on purpose: the
point is a known step (or none) and a known machine change, so the verdicts are known in advance."""
from __future__ import annotations

import json
import random

from report_helpers import write_jsonl

from harness import cli

CELLS = (("mnist_mlp", "pytorch", "eager", 0.004), ("mnist_mlp", "jax", "jit", 0.003),
         ("mnist_cnn", "pytorch", "eager", 0.020))
STEPPED = "mnist_mlp/pytorch/eager/cpu/mnist"


def make_run(path, hour: int, seed: int, factor: dict | None = None, cpu: str = "AMD EPYC", threads: int = 2,
             commit: str = "a" * 40, processes: int = 5, schema: int = 1, flag: str = "stable"):
    """A run dir of the three cells, `processes` processes each, step medians within ±3 % of the base
    (times `factor[cell]` where given), started at `hour` o'clock."""
    rng = random.Random(seed)
    rows = []
    for task, fw, variant, base in CELLS:
        cell = f"{task}/{fw}/{variant}/cpu/mnist"
        for r in range(processes):
            step = base * (factor or {}).get(cell, 1.0) * (1 + rng.uniform(-0.03, 0.03))
            row = {"schema": schema, "run_id": path.name, "cell": cell, "task": task, "framework": fw,
                   "variant": variant, "device": "cpu", "dataset": "mnist", "mode": None, "params": {},
                   "profile": "quick", "status": "ok", "error": None, "repeat": r, "attempt": 0,
                   "metrics": {"test_accuracy": 0.9 + rng.uniform(-0.01, 0.01)},
                   "timing": {"step_s": {"median": step, "iqr": step / 20, "n": 100}, "train_s": step * 100},
                   "stability": {"flag": flag, "reasons": []}, "threads": {"threads": threads},
                   "versions": {fw if fw != "pytorch" else "torch": "1.0"},
                   "started_at": f"2026-12-01T{hour:02d}:{r:02d}:00+0000"}
            if r:
                row["timing_only"] = True
            rows.append(row)
    path.mkdir(parents=True)
    write_jsonl(path / "results.jsonl", rows)
    env = {"date": f"2026-12-01T{hour:02d}:00:00+0000", "hostname": "vm", "cpu": cpu, "cores": 2,
           "git_commit": commit, "threads": threads, "profile": "quick", "python": "3.11.7",
           "versions": {"numpy": "2.4.6", "torch": "1.0", "jax": "1.0"}}
    (path / "environment.json").write_text(json.dumps(env))
    return path


def history(tmp_path, *dirs, fail=True) -> tuple[int, dict]:
    argv = ["history", *map(str, dirs), "-o", str(tmp_path / "out" / "history.html")]
    code = cli.main(argv + (["--fail-on-regression"] if fail else []))
    return code, json.loads((tmp_path / "out" / "history.json").read_text())


def test_a_30_percent_step_is_a_regression_with_what_changed(tmp_path, capsys):
    # given out of time order: the history sorts by start time
    c = make_run(tmp_path / "c", 12, 3, factor={STEPPED: 1.3}, threads=1, commit="c" * 40, flag="disturbed")
    a = make_run(tmp_path / "a", 10, 1)
    b = make_run(tmp_path / "b", 11, 2, commit="b" * 40)
    code, data = history(tmp_path, c, a, b)
    assert code == 1
    assert [r["path"] for r in data["runs"]] == [str(a), str(b), str(c)]
    assert [(x["cell"], x["kind"]) for x in data["changes"]] == [(STEPPED, "regression")]
    step = data["changes"][0]
    assert (step["from_index"], step["to_index"]) == (2, 3)
    assert 1.2 < step["ratio"] < 1.4 and step["method"].startswith("pooled t")
    assert step["stability"] == "before: all stable; after: 5 of 5 processes disturbed"
    assert "threads: 2 → 1" in step["changed"] and f"commit: {'b' * 12} → {'c' * 12}" in step["changed"]
    out = capsys.readouterr().out
    assert "1 regression(s)" in out and STEPPED in out
    html = (tmp_path / "out" / "history.html").read_text()
    assert "Regressions and improvements" in html and html.count('data-figure="chart-') == 4  # 2 tasks x (time, acc)
    assert history(tmp_path, c, a, b, fail=False)[0] == 0  # without the flag a regression is reported, not fatal


def test_an_improvement_is_listed_and_does_not_fail(tmp_path):
    a = make_run(tmp_path / "a", 10, 1)
    b = make_run(tmp_path / "b", 11, 2, factor={STEPPED: 0.7})
    code, data = history(tmp_path, a, b)
    assert code == 0
    assert [(x["cell"], x["kind"]) for x in data["changes"]] == [(STEPPED, "improvement")]


def test_a_cell_that_starts_failing_is_a_regression(tmp_path):
    a = make_run(tmp_path / "a", 10, 1)
    b = make_run(tmp_path / "b", 11, 2)
    rows = [json.loads(line) for line in (b / "results.jsonl").read_text().splitlines()]
    for row in rows:
        if row["cell"] == STEPPED:
            row.update(status="failed", error="RuntimeError: boom", timing={})
    write_jsonl(b / "results.jsonl", rows)
    code, data = history(tmp_path, a, b)
    assert code == 1
    assert [(x["cell"], x["kind"], x["method"]) for x in data["changes"]] == \
        [(STEPPED, "regression", "status ok → failed")]


def test_noise_alone_reports_no_step(tmp_path):
    dirs = [make_run(tmp_path / f"r{i}", 10 + i, seed=i) for i in range(4)]
    code, data = history(tmp_path, *dirs)
    assert code == 0
    assert data["changes"] == [] and data["notes"] == []


def test_single_processes_are_judged_on_the_noise_floor(tmp_path):
    a = make_run(tmp_path / "a", 10, 1, processes=1)
    b = make_run(tmp_path / "b", 11, 2, processes=1, factor={STEPPED: 1.3})  # within the ±75 % floor
    c = make_run(tmp_path / "c", 12, 3, processes=1, factor={STEPPED: 2.6})  # x2 against b: beyond it
    code, data = history(tmp_path, a, b, c)
    assert code == 1
    assert [(x["cell"], x["to_index"], x["method"].split(" ±")[0]) for x in data["changes"]] == \
        [(STEPPED, 3, "noise floor")]


def test_a_run_on_another_cpu_is_not_compared_silently(tmp_path, capsys):
    a = make_run(tmp_path / "a", 10, 1)
    other = make_run(tmp_path / "other", 11, 2, cpu="Intel Xeon", factor={STEPPED: 1.5})
    c = make_run(tmp_path / "c", 12, 3)
    code, data = history(tmp_path, a, other, c)
    assert code == 0  # other is 1.5x slower, but on another CPU: no step is called against it
    assert data["changes"] == []
    assert len(data["notes"]) == 2
    assert "#2 other ran on another machine than #1 a" in data["notes"][0]
    assert "first run on its machine" in data["notes"][0]
    assert "#3 c is compared with #1 a" in data["notes"][1]
    assert "note: #2 other ran on another machine" in capsys.readouterr().out
    assert {r["machine"] for r in data["runs"]} == {"AMD EPYC, 2 cores (vm)", "Intel Xeon, 2 cores (vm)"}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dlrosetta: error: ")
    return err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    a = make_run(tmp_path / "a", 10, 1)
    (tmp_path / "empty").mkdir()
    assert cli.main(["history", str(a), str(tmp_path / "empty")]) == 2
    assert "is not a run dir" in _one_line_error(capsys)

    newer = make_run(tmp_path / "newer", 11, 2, schema=99)
    assert cli.main(["history", str(a), str(newer)]) == 2
    assert "schema 99" in _one_line_error(capsys)

    broken = make_run(tmp_path / "broken", 12, 3)
    (broken / "environment.json").write_text("{not json")
    assert cli.main(["history", str(a), str(broken)]) == 2
    assert "environment.json" in _one_line_error(capsys)

    torn = make_run(tmp_path / "torn", 13, 4)
    (torn / "results.jsonl").write_text("garbage\n[1, 2]\n")
    assert cli.main(["history", str(a), str(torn)]) == 2
    assert "no readable row" in _one_line_error(capsys)

    assert cli.main(["history", str(a), str(a)]) == 2
    assert "given twice" in _one_line_error(capsys)
