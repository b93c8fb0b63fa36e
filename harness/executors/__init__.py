"""Executors decide *where* a cell's process runs; the process and its row are the same whichever runs it.

Each executor is one small module with ``run(jobs, opts, on_row, progress, **options)``: it runs every
job (`harness.running.runner.Job`) through `harness.running.runner.run_cell` and hands each finished row to `on_row`
(which appends it to results.jsonl at once) as soon as it is known.

- `local`: one process at a time on this machine, in order (the default).
- `ray_executor`: Ray tasks on a cluster (an embedded local one when no address is given).
"""
from __future__ import annotations

EXECUTORS = ("local", "ray")


def get(name: str):
    if name == "local":
        from harness.executors import local

        return local
    if name == "ray":
        from harness.executors import ray_executor

        return ray_executor
    raise ValueError(name)
