"""Numbers a user can trust: repeats in fresh processes, interleaved order, disturbance detection, the
thread limit measured, and every numeric flag checked before anything is written."""
import json
import os
import subprocess
import sys
import time

import pytest

from harness import cli
from harness.running.runner import allowed_cpus, read_rows


def run(out, *flags, variants="ok"):
    return cli.main(["run", "--tasks", "x2_descent", "--frameworks", "numpy", "--profile", "smoke",
                     "--out", str(out), "--no-progress", "--variants", variants, *flags])


def test_repeat_runs_fresh_processes_interleaved_and_resumes_per_repeat(dummy_impls):
    out = dummy_impls / "run"
    assert run(out, "--repeat", "2", "--variants", "ok,busy") == 0
    rows = read_rows(out / "results.jsonl")
    assert sorted((r["variant"], r["repeat"]) for r in rows) == [("busy", 0), ("busy", 1), ("ok", 0), ("ok", 1)]
    assert [r["schedule"]["round"] for r in rows] == [0, 0, 1, 1]  # round 0 of every cell, then round 1
    for r in rows:
        assert r["status"] == "ok" and r["attempt"] == 0
        assert r["stability"]["flag"] in ("stable", "unstable", "disturbed")
        before, after = r["stability"]["probe_gflops"]  # the machine-speed probe on either side
        assert before > 0.1 and after > 0.1
        assert (out / r["dir"] / "steps.json").exists() and (out / r["dir"] / "log.txt").exists()
        assert r.get("timing_only", False) == (r["repeat"] > 0)
    assert len({r["dir"] for r in rows}) == 4  # one folder per process
    schedule = [json.loads(line) for line in (out / "schedule.jsonl").read_text().splitlines()]
    assert schedule[0]["shuffled"] and len(schedule[0]["rounds"]) == 2
    # resume completes a run per (cell, repeat): only the third repeat of each cell runs
    assert run(out, "--repeat", "3", "--variants", "ok,busy", "--resume") == 0
    rows = read_rows(out / "results.jsonl")
    assert len(rows) == 6 and sorted(r["repeat"] for r in rows[4:]) == [2, 2]


def test_shuffled_order_is_seeded():
    from harness.matrix.registry import Cell

    cells = [Cell("x2_descent", "numpy", f"v{i}") for i in range(8)]
    _, a = cli.plan_jobs(cells, 3, 7, set())
    _, b = cli.plan_jobs(cells, 3, 7, set())
    _, c = cli.plan_jobs(cells, 3, 8, set())
    assert a == b and a != c
    assert all(sorted(r) == sorted(x.key for x in cells) for r in a)  # each round holds every cell once


def _burners(n):
    code = "import time\nend = time.time() + 120\nwhile time.time() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def test_disturbance_is_detected_end_to_end(dummy_impls):
    """The same busy cell (1 s of pure-Python steps) alone is stable; with two CPU-burning processes beside
    it, it is flagged disturbed, with the other processes' CPU use in the row."""
    for attempt in range(2):  # a test just before may leave processes winding down: wait for quiet once
        quiet = dummy_impls / f"quiet{attempt}"
        assert run(quiet, "--set", "steps=300", variants="busy") == 0
        alone = read_rows(quiet / "results.jsonl")[0]["stability"]
        if alone["flag"] == "stable":
            break
        time.sleep(5)
    burners = _burners(2)
    try:
        time.sleep(0.5)
        loud = dummy_impls / "loud"
        assert run(loud, "--set", "steps=300", variants="busy") == 0
    finally:
        for b in burners:
            b.kill()
            b.wait()
    busy = read_rows(loud / "results.jsonl")[0]["stability"]
    assert alone["flag"] == "stable", alone
    assert alone["basis"] == "timed phase" and alone["window_s"] > 0.5
    assert busy["flag"] == "disturbed", busy
    assert busy["others_cpu"] > 0.8 and "other processes used" in busy["reasons"][0]


@pytest.mark.skipif(len(allowed_cpus()) < 2, reason="needs two cores to show a limit of one")
def test_threads_pins_the_cell_and_its_cpu_time_follows(dummy_impls):
    """--threads 1 pins the child to one core: two threads of matmuls (which no thread variable limits)
    then use at most one CPU second per wall second; with both cores they use more."""
    pinned, free = dummy_impls / "pinned", dummy_impls / "free"
    assert run(pinned, "--threads", "1", "--set", "steps=8", variants="threaded") == 0
    assert run(free, "--threads", "2", "--set", "steps=8", variants="threaded") == 0
    one, two = (read_rows(d / "results.jsonl")[0] for d in (pinned, free))
    assert one["threads"]["affinity"] == allowed_cpus()[:1] and len(two["threads"]["affinity"]) == 2
    assert one["threads"]["cpu_per_wall"] <= 1.05
    assert one["stability"]["process"]["cpu_per_wall"] <= 1.05
    assert two["threads"]["cpu_per_wall"] > 1.2  # the same work spreads over both cores when allowed


def test_short_timed_phase_is_judged_on_the_whole_process(dummy_impls):
    out = dummy_impls / "run"
    assert run(out) == 0
    block = read_rows(out / "results.jsonl")[0]["stability"]
    assert block["basis"] == "whole process" and block["timed_window_s"] < 0.5
    assert block["process"]["window_s"] > 0 and len(block["probe_gflops"]) == 2  # kept when re-judged


def test_step_spread_limit_is_per_task_kind():
    from harness.measuring import stability

    steps = [1e-3, 2e-3] * 20  # robust CV 0.49: above MNIST's limit, within linear regression's
    assert stability.judge({"others_cpu": 0.0}, steps, "mnist")["flag"] == "unstable"
    block = stability.judge({"others_cpu": 0.0}, steps, "linreg")
    assert block["flag"] == "stable" and block["thresholds"]["step_cv"] == stability.STEP_CV_LIMITS["linreg"]
    assert stability.judge({"others_cpu": 0.9}, steps, "linreg")["flag"] == "disturbed"


@pytest.mark.parametrize("flags, message", [
    (["--timeout", "-1"], "argument --timeout: expected a number > 0, got '-1'"),
    (["--timeout", "0"], "argument --timeout"),
    (["--timeout", "nan"], "argument --timeout"),
    (["--threads", "0"], "argument --threads: expected an integer from 1 to"),
    (["--threads", "4096"], "argument --threads"),
    (["--threads", "two"], "argument --threads"),
    (["--repeat", "0"], "argument --repeat: expected an integer >= 1"),
    (["--rerun-disturbed", "-1"], "argument --rerun-disturbed: expected an integer >= 0"),
    (["--max-memory", "0"], "argument --max-memory: expected a number > 0"),
    (["--max-memory", "1e9"], "argument --max-memory"),
    (["--order-seed", "-3"], "argument --order-seed"),
    (["--tasks", "mnist_mlp", "--set", "lr=-1"], "bad value '-1' for lr: expected a number > 0"),
    (["--tasks", "mnist_mlp", "--set", "lr=0"], "for lr"),
    (["--tasks", "mnist_mlp", "--set", "lr=inf"], "for lr"),
    (["--tasks", "mnist_mlp", "--set", "batch_size=0"], "bad value '0' for batch_size: expected an integer >= 1"),
    (["--tasks", "mnist_mlp", "--set", "batch_size=1.5"], "for batch_size"),
    (["--tasks", "mnist_mlp", "--set", "epochs=0"], "for epochs"),
    (["--tasks", "mnist_mlp", "--set", "target_accuracy=2"], "for target_accuracy"),
    (["--tasks", "mnist_mlp", "--set", "stop_at_target=maybe"], "for stop_at_target: expected true or false"),
    (["--tasks", "mnist_mlp", "--set", "hidden=3"], "cannot be changed from the command line"),
    (["--tasks", "mnist_mlp", "--set", "dataset=mnist"], "chosen with --dataset"),
    (["--tasks", "linear_regression", "--sweep", "lr=0.1,-1"], "bad value '-1' for lr"),
    (["--tasks", "linear_regression", "--set", "test_fraction=1"], "for test_fraction"),
    (["--tasks", "x2_descent", "--set", "steps=-5"], "for steps"),
])
def test_bad_numeric_flags_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert cli.main(["run", "--profile", "smoke", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_parity_steps_is_checked(tmp_path, capsys):
    assert cli.main(["parity", "--steps", "0", "--out", str(tmp_path / "p")]) == 2
    assert "argument --steps: expected an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_set_applies_only_where_a_task_has_the_setting(capsys):
    """`--set epochs=1` over every task: x² (no epochs) runs as it is, once."""
    assert cli.main(["run", "--tasks", "x2_descent,linear_regression", "--frameworks", "numpy",
                     "--profile", "smoke", "--set", "epochs=1", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "round 0  x2_descent/numpy/manual/cpu" in lines
    assert any(line.endswith("/epochs=1") for line in lines if "linear_regression" in line)


def test_dry_run_lists_processes_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["run", "--tasks", "x2_descent", "--frameworks", "numpy", "--repeat", "3",
                     "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert text.count("(timing only)") == 2 and "3 processes (1 cells x 3 repeat(s)" in text
    assert not out.exists()


def test_repeat_env_default(monkeypatch):
    monkeypatch.setenv("DLROSETTA_REPEAT", "3")
    args = cli.build_parser().parse_args(["run"])
    assert args.repeat == 3
    assert os.environ["DLROSETTA_REPEAT"] == "3"
