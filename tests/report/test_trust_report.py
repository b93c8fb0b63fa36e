"""The report side of trust: repeats aggregated over processes, the banner for disturbed processes,
diverged apart from failed and out of the rankings, and A/B verdicts on between-process noise."""
import copy
import json
import shutil

from report_helpers import FIXTURE, read_jsonl, write_jsonl

from reports import render, stats
from reports.compare import comparison_json
from reports.data import load_run
from reports.per_task import primary_timed


def with_processes(row, medians, flags=None):
    """The row as N processes (repeat 0..N-1) with the given step medians (seconds) and stability flags."""
    out = []
    for k, median in enumerate(medians):
        r = copy.deepcopy(row)
        r["repeat"] = k
        r["timing"]["step_s"] = {"median": median, "iqr": median * 0.05, "n": 90}
        flag = (flags or ["stable"] * len(medians))[k]
        r["stability"] = {"flag": flag, "reasons": [] if flag == "stable" else ["other processes used 1.00 cores"]}
        out.append(r)
    return out


def make_run(tmp_path, name, edit):
    run_dir = tmp_path / name
    shutil.copytree(FIXTURE, run_dir)
    rows = read_jsonl(FIXTURE / "results.jsonl")
    write_jsonl(run_dir / "results.jsonl", edit(rows))
    return run_dir


def mlp_ok(rows):
    return next(r for r in rows if r["task"] == "mnist_mlp" and r["status"] == "ok" and not r.get("secondary"))


def test_repeats_aggregate_and_disturbed_processes_get_a_banner(tmp_path):
    target = {}

    def edit(rows):
        row = mlp_ok(rows)
        target["cell"] = row["cell"]
        rest = [r for r in rows if r is not row]
        return rest + with_processes(row, [0.002, 0.003, 0.004], ["stable", "disturbed", "stable"])

    run_dir = make_run(tmp_path, "run", edit)
    run = load_run(run_dir)
    row = next(r for r in run.rows if r["cell"] == target["cell"])
    assert row["repeat"] == 0 and row["processes"]["n"] == 3 and row["processes"]["median"] == 0.003
    assert row["timing"]["step_s"]["median"] == 0.003 and row["timing"]["step_s"]["process_median"] == 0.002
    assert row["processes"]["flags"] == {"stable": 2, "disturbed": 1}
    html = render.render([run_dir], tmp_path / "r.html").read_text()
    assert 'id="stability-banner"' in html and "1 timed process was not measured on a quiet machine" in html
    quiet = render.render([FIXTURE], tmp_path / "q.html").read_text()
    assert 'id="stability-banner"' not in quiet


def test_diverged_is_apart_from_failed_and_never_ranked(tmp_path):
    def edit(rows):
        row = mlp_ok(rows)
        row["status"], row["error"] = "diverged", "diverged: loss is nan (step 2, epoch 1)"
        row["divergence"] = {"reason": "loss is nan", "step": 2, "epoch": 1, "loss": None, "first_loss": 2.3}
        return rows

    run_dir = make_run(tmp_path, "run", edit)
    run = load_run(run_dir)
    assert not any(r["status"] == "diverged" for r in primary_timed(run.rows))
    html = render.render([run_dir], tmp_path / "r.html").read_text()
    assert "st-diverged" in html and "diverged: loss is nan (step 2, epoch 1)" in html


def test_disturbed_rows_are_left_out_of_rankings():
    rows = [{"status": "ok", "timing": {"step_s": {"median": 0.001}}, "stability": {"flag": "disturbed"}},
            {"status": "ok", "timing": {"step_s": {"median": 0.002}}, "stability": {"flag": "stable"}},
            {"status": "ok", "timing": {"step_s": {"median": 0.003}}}]
    assert [r["timing"]["step_s"]["median"] for r in primary_timed(rows)] == [0.002, 0.003]


def test_verdicts_on_recorded_processes():
    same = stats.compare([1.00, 1.05, 0.97], [1.02, 0.99, 1.04])
    slower = stats.compare([1.00, 1.01, 0.99], [1.30, 1.31, 1.29])
    assert (same["verdict"], same["method"]) == ("same", "pooled t")
    assert (slower["verdict"], slower["method"]) == ("slower", "pooled t") and slower["ci"][0] > 1
    assert stats.compare([1.0], [1.0 + stats.SINGLE_PROCESS_FLOOR / 2])["verdict"] == "same"
    beyond = stats.compare([1.0], [1.0 + 2 * stats.SINGLE_PROCESS_FLOOR])
    assert (beyond["verdict"], beyond["method"]) == ("slower", "noise floor")
    assert stats.compare([], [1.0])["verdict"] == "no estimate"
    assert stats.compare([1.0, 1.0, 1.0], [0.5, 0.51, 0.49])["verdict"] == "faster"


def test_comparison_json_beside_the_html(tmp_path):
    target = {}

    def three(scale):
        def edit(rows):
            row = mlp_ok(rows)
            target["cell"] = row["cell"]
            return [r for r in rows if r is not row] + with_processes(row, [x * scale for x in (0.002, 0.00205, 0.00198)])
        return edit

    a, b = make_run(tmp_path, "a", three(1.0)), make_run(tmp_path, "b", three(1.5))
    out = render.render([a, b], tmp_path / "cmp" / "cmp.html")
    entries = json.loads((out.parent / "comparison.json").read_text())
    by = {e["cell"]: e for e in entries}
    assert set(entries[0]) == {"cell", "ratio", "verdict", "method", "n_a", "n_b", "ci"}
    assert by[target["cell"]]["verdict"] == "slower" and by[target["cell"]]["n_a"] == 3
    assert abs(by[target["cell"]]["ratio"] - 1.5) < 1e-9
    assert all(e["verdict"] in stats.VERDICTS for e in entries)
    assert {e["verdict"] for e in entries if e["cell"] != target["cell"]} <= {"same", "no estimate"}
    assert comparison_json(load_run(a), load_run(b)) == entries


def test_merged_hosts_are_listed_and_never_ranked_against_each_other(tmp_path):
    """A merged run whose MNIST rows come from two machines: the machine card lists both, and "× fastest"
    and the speed note rank each row only against rows of its own machine."""
    from reports.per_task import mnist_table_rows, speed_note

    fast = {"hostname": "gpu-box", "cpu": "Fast CPU", "cores": 16, "gpu": None}
    slow = {"hostname": "laptop", "cpu": "Slow CPU", "cores": 2, "gpu": None}

    def edit(rows):
        mlp = [r for r in rows if r["task"] == "mnist_mlp" and r["status"] == "ok" and not r.get("secondary")
               and not r.get("params")]
        assert len(mlp) >= 2
        copies = []
        for r in mlp:
            r["host"] = slow
            twin = copy.deepcopy(r)
            twin["host"], twin["cell"] = fast, r["cell"] + "@gpu-box"
            twin["timing"]["step_s"]["median"] = r["timing"]["step_s"]["median"] / 10
            copies.append(twin)
        return rows + copies

    run_dir = make_run(tmp_path, "merged", edit)
    env = json.loads((run_dir / "environment.json").read_text())
    env["hosts"] = [dict(slow, shard="shard-1"), dict(fast, shard="shard-2")]
    (run_dir / "environment.json").write_text(json.dumps(env))
    run = load_run(run_dir)
    rows = [r for r in run.rows if r["task"] == "mnist_mlp" and r["status"] == "ok" and not r.get("secondary")
            and not r.get("params")]
    table = mnist_table_rows(rows)
    for host in ("laptop", "gpu-box"):
        ratios = [t["vs_fastest"] for t, r in zip(table, rows) if r["host"]["hostname"] == host]
        assert min(ratios) == 1.0  # each machine has its own fastest row, the laptop is not x10 of the box
    note = speed_note(rows, None)
    assert "On Slow CPU" in note and "On Fast CPU" in note and "not ranked against each other" in note
    html = render.render([run_dir], tmp_path / "r.html").read_text()
    assert "2 machines" in html and "laptop" in html and "gpu-box" in html and "shard-2" in html
    single = render.render([FIXTURE], tmp_path / "one.html").read_text()
    assert "machines</b> (merged shards)" not in single
