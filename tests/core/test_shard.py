"""Sharding the matrix over machines and merging the shards back into one run dir."""
import json

import pytest

from harness import cli
from harness.matrix import shard
from harness.matrix.registry import FRAMEWORKS, enumerate_cells
from harness.matrix.tasks import TASKS
from harness.running.runner import read_rows

from .test_trust import run


def full_matrix():
    return enumerate_cells(list(TASKS), list(FRAMEWORKS), profile="full")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_shards_hold_every_cell_exactly_once_and_balance(n):
    cells = full_matrix()
    shards = shard.split(cells, n, "full")
    keys = [c.key for part, _ in shards for c in part]
    assert sorted(keys) == sorted(c.key for c in cells) and len(keys) == len(set(keys))
    loads = [seconds for _, seconds in shards]
    biggest = max(shard.estimated_cost(c, "full") for c in cells)
    assert max(loads) <= sum(loads) / n + biggest  # LPT: no shard exceeds the mean by more than one cell
    again = shard.split(list(reversed(cells)), n, "full")  # every machine computes the same split
    assert [sorted(c.key for c in part) for part, _ in shards] == [sorted(c.key for c in part) for part, _ in again]


def test_measured_costs_steer_the_split(tmp_path):
    cells = enumerate_cells(["x2_descent"], ["numpy", "pytorch", "jax", "tf1"], profile="full")
    run_dir = tmp_path / "earlier"
    run_dir.mkdir()
    walls = {cells[0].key: 100.0}  # one slow cell: it gets a shard to itself
    (run_dir / "results.jsonl").write_text("".join(
        json.dumps({"cell": c.key, "timing": {"cell_wall_s": walls.get(c.key, 1.0)}}) + "\n" for c in cells))
    parts = shard.split(cells, 2, "full", measured=shard.measured_costs(run_dir))
    assert [c.key for c in parts[0][0]] == [cells[0].key] and parts[0][1] == 100.0


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0", "1/-3"])
def test_bad_shard_is_one_line(text, capsys):
    assert cli.main(["list", "--shard", text]) == 2
    err = capsys.readouterr().err
    assert "--shard expects k/n" in err and err.count("\n") == 1


def test_list_shows_a_shard_and_its_time(capsys):
    assert cli.main(["list", "--shard", "2/3", "--tasks", "mnist_mlp,mnist_cnn"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "in shard 2/3 (estimated" in last and "min)" in last


def test_two_shards_merge_into_the_unsharded_run(dummy_impls, capsys):
    variants = "ok,crash,nan"
    whole, a, b, merged = (dummy_impls / d for d in ("whole", "a", "b", "merged"))
    run(whole, variants=variants)
    run(a, "--shard", "1/2", variants=variants)
    run(b, "--shard", "2/2", variants=variants)
    assert cli.main(["merge", str(a), str(b), "-o", str(merged)]) == 0
    rows = read_rows(merged / "results.jsonl")
    assert sorted(r["cell"] for r in rows) == sorted(r["cell"] for r in read_rows(whole / "results.jsonl"))
    assert {r["cell"]: r["status"] for r in rows} == {r["cell"]: r["status"] for r in read_rows(whole / "results.jsonl")}
    assert all(r["host"]["cpu"] and r["shard"] in ("a", "b") for r in rows)
    env = json.loads((merged / "environment.json").read_text())
    assert [h["shard"] for h in env["hosts"]] == ["a", "b"] and env["shards"] == [str(a), str(b)]
    assert all((merged / r["dir"] / "log.txt").exists() for r in rows)  # the process folders came along
    # the same shard twice would hold one process twice: refused
    capsys.readouterr()
    assert cli.main(["merge", str(a), str(a), "-o", str(dummy_impls / "twice")]) == 2
    err = capsys.readouterr().err
    assert "a merged run keeps one row per process" in err and err.count("\n") == 1


def test_merge_refuses_mismatched_shards_unless_allowed(dummy_impls, capsys):
    a, b = dummy_impls / "a", dummy_impls / "b"
    run(a, "--shard", "1/2", variants="ok,crash")
    run(b, "--shard", "2/2", "--set", "steps=5", variants="ok,crash")
    capsys.readouterr()
    assert cli.main(["merge", str(a), str(b), "-o", str(dummy_impls / "m")]) == 2
    err = capsys.readouterr().err
    assert "shards do not match (--set/--sweep settings differ" in err and err.count("\n") == 1
    assert not (dummy_impls / "m").exists()
    assert cli.main(["merge", str(a), str(b), "-o", str(dummy_impls / "m"), "--allow-mismatch"]) == 0
    env = json.loads((dummy_impls / "m" / "environment.json").read_text())
    assert env["merge_mismatches"]


def test_merge_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["merge", str(tmp_path / "empty"), str(tmp_path / "nope"), "-o", str(tmp_path / "m")]) == 2
    assert "is not a run dir" in capsys.readouterr().err


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LINES = st.one_of(st.sampled_from(["not json", "[1]", "null", "{", '{"cell": 3}', '{"cell": "a", "repeat": "x"}',
                                   '{"cell": "a"}', '{"cell": "<script>", "status": "ok", "repeat": 1}']),
                  st.dictionaries(st.sampled_from(["cell", "status", "repeat", "attempt", "host", "init"]),
                                  st.one_of(st.none(), st.integers(), st.text(max_size=6), st.floats(allow_nan=True)),
                                  max_size=4).map(json.dumps))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(LINES, max_size=5), st.lists(LINES, max_size=5), st.sampled_from(["{}", "[]", "nope", '{"profile": 1}']))
def test_merge_never_tracebacks(lines_a, lines_b, env_text):
    import contextlib
    import io
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for name, lines in (("a", lines_a), ("b", lines_b)):
            d = Path(tmp) / name
            d.mkdir()
            (d / "results.jsonl").write_text("\n".join(lines) + "\n")
            (d / "environment.json").write_text(env_text)
            dirs.append(str(d))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["merge", *dirs, "-o", str(Path(tmp) / "m")])
        assert code in (0, 2) and "Traceback" not in err.getvalue()
        if code == 2:
            assert err.getvalue().count("\n") == 1
