"""`--executor ray`: the smoke matrix as Ray tasks — on an embedded cluster started by the run, and on a
two-node test cluster (Ray's own `ray.cluster_utils.Cluster`) where a worker killed mid-cell gets its cell
run again, recorded in the row, nothing lost."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from harness import cli
from harness.running.runner import read_rows

from .test_trust import run

import ray  # the core env installs Ray (extra `ray`): a missing one fails these tests, never skips them


def test_embedded_cluster_gives_the_local_statuses(dummy_impls):
    variants = "ok,crash,nan"
    assert run(dummy_impls / "local", variants=variants) == 1
    assert run(dummy_impls / "ray", "--executor", "ray", variants=variants) == 1
    local = {r["cell"]: r["status"] for r in read_rows(dummy_impls / "local" / "results.jsonl")}
    rows = read_rows(dummy_impls / "ray" / "results.jsonl")
    assert {r["cell"]: r["status"] for r in rows} == local
    assert all(r["executor"]["name"] == "ray" and r["executor"]["retries"] == 0 for r in rows)
    assert not ray.is_initialized()  # the embedded cluster was the run's own and is gone


@pytest.fixture
def two_nodes(dummy_impls):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"dlrosetta_slot": 1}})
    cluster.add_node(num_cpus=1, resources={"dlrosetta_slot": 1})
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_worker_killed_mid_cell_is_rerun_and_recorded(dummy_impls, two_nodes):
    out = dummy_impls / "run"
    marker = out / "cells" / "x2_descent__numpy__flaky__cpu" / "first-try"
    killed = {}

    def kill_the_worker():
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(0.3)
        cell_pid = int(marker.read_text())
        killed["worker"] = _parent_of(cell_pid)  # the Ray worker that runs run_cell for this cell
        os.kill(killed["worker"], signal.SIGKILL)
        killed["cell"] = cell_pid

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    code = run(out, "--executor", "ray", "--ray-address", two_nodes.address, variants="ok,flaky")
    killer.join()
    rows = {r["variant"]: r for r in read_rows(out / "results.jsonl")}
    assert code == 0 and set(rows) == {"ok", "flaky"}
    assert rows["flaky"]["status"] == "ok"
    assert rows["flaky"]["executor"]["retries"] == 1 and rows["flaky"]["executor"]["retry_reasons"]
    assert rows["ok"]["executor"]["retries"] == 0
    time.sleep(0.5)
    assert not Path(f"/proc/{killed['cell']}").exists() or \
        "zombie" in Path(f"/proc/{killed['cell']}/status").read_text()  # the cell died with its worker
    hosts = {r["executor"]["node_id"] for r in rows.values()}
    assert len(hosts) >= 1


def test_ray_without_ray_installed_is_one_line(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    assert cli.main(["run", "--tasks", "x2_descent", "--frameworks", "numpy", "--profile", "smoke",
                     "--executor", "ray", "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "pip install 'dlrosetta[ray]'" in capsys.readouterr().err
