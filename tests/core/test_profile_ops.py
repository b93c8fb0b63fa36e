"""`--profile-ops` without a framework: the profiler's window, the Recorder leaving traced steps out of the
steady-state times, and the flag reaching the cell. The real profilers are tested in each family's env."""
import json

from harness import cli
from harness.measuring import profile_ops
from harness.measuring.measure import Recorder



def fake_family(monkeypatch):
    log = []
    monkeypatch.setitem(profile_ops._START, "fake", lambda out_dir, device: log.append("start") or object())
    monkeypatch.setitem(profile_ops._STOP, "fake", lambda p, out_dir: log.append("stop") or (
        profile_ops._sum([("dot", 3.0), ("dot", 1.0), ("fusion.7", 2.0), ("ThunkExecutor::Execute", 9.0)])))
    monkeypatch.setitem(profile_ops.PROFILERS, "fake", "fake.profiler")
    return log


def test_the_window_is_steady_state_and_outside_every_step_time(monkeypatch, tmp_path):
    log = fake_family(monkeypatch)
    profiler = profile_ops.OpsProfiler("fake", tmp_path / "ops_trace", total_steps=40)
    rec = Recorder("mnist", on_step=profiler)
    rec.start()
    for _ in range(40):
        rec.step(1.0)
    assert log == ["start", "stop"]
    first, last = profile_ops.PROFILE_AFTER + 1, profile_ops.PROFILE_AFTER + profile_ops.PROFILE_STEPS
    assert rec.profiled_steps == set(range(first - 1, last))  # 0-based indices of steps 11..15
    assert len(rec.steady_steps()) == 40 - 1 - profile_ops.PROFILE_STEPS
    block = profiler.result(tmp_path)
    assert block["status"] == "ok" and block["steps"] == [first, last]
    # bookkeeping events (an executor waiting) are left out, numbered fusions are summed as one op
    assert [(op["op"], op["ms"], op["calls"]) for op in block["top"]] == [("dot", 4.0, 2), ("fusion", 2.0, 1)]
    assert block["top"][0]["ms_per_step"] == 4.0 / profile_ops.PROFILE_STEPS
    assert abs(block["top"][0]["share"] - 4 / 6) < 1e-3


def test_a_short_run_is_traced_over_its_last_steps_and_a_shorter_one_says_so(monkeypatch, tmp_path):
    log = fake_family(monkeypatch)
    short = profile_ops.OpsProfiler("fake", tmp_path / "a", total_steps=8)
    assert (short.start_at, short.stop_at) == (3, 8)
    never = profile_ops.OpsProfiler("fake", tmp_path / "b", total_steps=None)
    for steps in range(1, 6):
        never(steps)
    assert log == [] and never.result(tmp_path)["status"] == "not_run"


def test_numpy_has_no_profiler_and_keras_uses_its_backends():
    assert profile_ops.family_of("numpy") is None
    assert [profile_ops.family_of(f) for f in ("keras-tensorflow", "keras-jax", "keras-torch", "flax", "tf1")] == \
        ["tf", "jax", "torch", "jax", "tf"]


def test_the_flag_reaches_the_cell_and_numpy_cells_record_nothing(tmp_path):
    out = tmp_path / "run"
    code = cli.main(["run", "--tasks", "linear_regression", "--frameworks", "numpy", "--dataset", "synthetic",
                     "--modes", "full-batch", "--profile", "smoke", "--out", str(out), "--no-progress",
                     "--profile-ops"])
    assert code == 0
    job = json.loads(next(out.glob("cells/*/job.json")).read_text())
    assert job["profile_ops"] is True
    row = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert row["status"] == "ok" and "ops_profile" not in row
