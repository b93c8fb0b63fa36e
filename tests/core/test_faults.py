"""Faults: divergence as its own status, the memory limit, interrupted runs, unwritable output, and
re-running disturbed processes. The misbehaving cells are the dummy package of conftest.py."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cli
from harness.matrix.registry import Cell
from harness.running import runner
from harness.running.runner import read_rows

from .test_trust import _burners, run


def test_an_exploding_loss_is_diverged_at_its_step_and_training_stops(dummy_impls):
    out = dummy_impls / "run"
    assert run(out, "--set", "steps=50", variants="explode") == 1
    row = read_rows(out / "results.jsonl")[0]
    assert row["status"] == "diverged"
    d = row["divergence"]
    # losses 1, 10, ..., 1e5: the start scale is max(first loss, x0 = 10), so the sixth step (1e5) is past
    # 1e3 x it, and nothing runs after it
    assert d["step"] == 6 and d["loss"] == 1e5 and d["first_loss"] == 1.0
    assert row["timing"]["steps"] == 5 and "over 1000x" in row["error"]
    assert json.loads((out / row["dir"] / "steps.json").read_text())["losses"] == [1.0, 10.0, 100.0, 1e3, 1e4]


def test_real_linear_regression_with_a_huge_learning_rate_diverges(tmp_path):
    out = tmp_path / "run"
    code = cli.main(["run", "--tasks", "linear_regression", "--frameworks", "numpy", "--profile", "smoke",
                     "--dataset", "synthetic", "--mode", "full-batch", "--sweep", "lr=1e6", "--out", str(out),
                     "--no-progress"])
    rows = read_rows(out / "results.jsonl")
    assert code == 1 and rows and all(r["status"] == "diverged" for r in rows)
    assert all(isinstance(r["divergence"]["step"], int) and r["divergence"]["step"] <= 5 for r in rows)
    assert all(r["stability"] is not None for r in rows)  # timed up to the divergence


def test_x2_with_a_learning_rate_past_one_diverges(dummy_impls, tmp_path, monkeypatch):
    monkeypatch.delenv("DLROSETTA_IMPL_PACKAGE")  # the real numpy column
    from harness.matrix import registry

    for fn in (registry.impl_path, registry.variants):
        fn.cache_clear()
    out = tmp_path / "x2"
    assert cli.main(["run", "--tasks", "x2_descent", "--frameworks", "numpy", "--profile", "smoke", "--set",
                     "lr=1.1", "--out", str(out), "--no-progress"]) == 1
    row = read_rows(out / "results.jsonl")[0]
    assert row["status"] == "diverged" and "away from the minimum" in row["error"]


def test_a_cell_over_the_memory_limit_fails_and_the_matrix_goes_on(dummy_impls):
    out = dummy_impls / "run"
    assert run(out, "--max-memory", "0.5", variants="hog,ok") == 1
    rows = {r["variant"]: r for r in read_rows(out / "results.jsonl")}
    hog = rows["hog"]
    assert hog["status"] == "failed"
    assert hog["error"].startswith("out of memory (limit 0.5 GB, peak 0.")
    assert 0.3 * 1024 < hog["memory"]["peak_rss_mb"] < 1.2 * 1024  # stopped near the limit, not at 12 GB
    assert rows["ok"]["status"] == "ok"  # the next cell ran


def _pids_of(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("sig, code, how", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_interrupt_kills_the_cell_keeps_rows_and_says_how_to_resume(dummy_impls, sig, code, how):
    out = dummy_impls / "run"
    cmd = [sys.executable, "-m", "harness", "run", "--tasks", "x2_descent", "--frameworks", "numpy",
           "--profile", "smoke", "--variants", "ok,crash,slowhang", "--out", str(out), "--no-progress"]
    # a shell's background job (`cmd &`, nohup) starts with SIGINT ignored, and Python then keeps it ignored:
    # the run under test gets the default disposition, as from a terminal, whatever launched the suite
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = out / "cells" / "x2_descent__numpy__slowhang__cpu" / "started"
    deadline = time.time() + 60
    while not started.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert started.exists(), "the hanging cell never started"
    cell_pid = int(started.read_text())
    marker = str(out / "cells" / "x2_descent__numpy__slowhang__cpu" / "job.json")
    assert _pids_of(marker) == [cell_pid]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"interrupted ({how}): 2 of 3 processes done")
    assert last.endswith("--resume") and f"--out {out}" in last and "dlrosetta run" in last
    time.sleep(0.3)
    assert _pids_of(marker) == []  # no orphan: the cell's whole process group is gone
    rows = read_rows(out / "results.jsonl")
    assert [r["variant"] for r in rows] == ["ok", "crash"]


def test_an_unwritable_out_is_one_line_before_the_run(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli.main(["run", "--tasks", "x2_descent", "--frameworks", "numpy", "--profile", "smoke",
                     "--out", str(blocker / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dlrosetta: error: cannot write the run dir {blocker / 'run'}") and err.count("\n") == 1


def test_a_full_disk_mid_run_stops_with_one_line(dummy_impls, capsys):
    """The results file turns into /dev/full while a cell runs: the next write fails with ENOSPC, the run
    stops with exit 1 and one line naming the file."""
    out = dummy_impls / "run"
    assert run(out, variants="ok,sabotage,threaded") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"dlrosetta: error: cannot write {out / 'results.jsonl'}: No space left on device")
    assert "1 finished row(s)" in err[-1]
    assert not any(line.startswith("[3/3]") for line in err)  # the run stopped: the third cell never ran


def test_a_write_failing_part_way_leaves_no_torn_row(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    runner.append_row(path, {"cell": "a", "status": "ok"})
    real_write = os.write

    def half_then_enospc(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_enospc)
    with pytest.raises(runner.OutputError, match="No space left on device"):
        runner.append_row(path, {"cell": "b", "status": "ok", "pad": "x" * 1000})
    monkeypatch.setattr(os, "write", real_write)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["cell"] for line in lines] == ["a"]  # rolled back to the last whole row


def test_rerun_disturbed_keeps_every_attempt(dummy_impls):
    out = dummy_impls / "run"
    burners = _burners(2)
    try:
        time.sleep(0.5)
        assert run(out, "--set", "steps=300", "--rerun-disturbed", "1", variants="busy") == 0
    finally:
        for b in burners:
            b.kill()
            b.wait()
    rows = read_rows(out / "results.jsonl")
    assert [(r["repeat"], r["attempt"]) for r in rows] == [(0, 0), (0, 1)]
    assert rows[1]["schedule"]["round"] == "rerun" and rows[1]["dir"].endswith("repeat-0-attempt-1")
    assert all(r["stability"]["flag"] == "disturbed" for r in rows)


def test_disturbed_jobs_picks_processes_without_a_stable_attempt():
    cells = [Cell("x2_descent", "numpy", v) for v in ("a", "b", "c")]
    rows = [{"cell": cells[0].key, "repeat": 0, "status": "ok", "stability": {"flag": "disturbed"}},
            {"cell": cells[0].key, "repeat": 0, "status": "ok", "stability": {"flag": "stable"}},
            {"cell": cells[1].key, "repeat": 1, "status": "ok", "stability": {"flag": "unstable"}},
            {"cell": cells[2].key, "repeat": 0, "status": "failed", "stability": None}, "not a row"]
    again = cli.disturbed_jobs(rows, cells, attempt=2)
    assert [(j.cell.variant, j.repeat, j.attempt) for j in again] == [("b", 1, 2)]
