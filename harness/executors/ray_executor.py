"""The Ray executor: each process of the run is a Ray task on a cluster.

With no address, an embedded local cluster is started for the run (one machine, no set-up) and shut
down after it. Inside the task the cell still runs in its own child process with its own timeout and
rusage (`runner.run_cell`), exactly as with the local executor. Every timed task asks for one
`dlrosetta_slot` — a custom resource each node offers once (`ray start --resources
'{"dlrosetta_slot": 1}'`) — so no two timed cells share a machine; a cell that only checks an answer
(a task with `timed=False`: x² descent) asks for one CPU instead and may run beside it. The driver
appends each row the moment its task returns: a killed driver loses nothing, and `--resume` completes
the run.

A task whose worker or node dies (Ray's system errors: the worker crashed, the node died) is submitted
again, up to MAX_RETRIES times, and its row says so (`executor.retries`, `executor.retry_reasons`);
the cell's child dies with its worker (the runner asks the kernel for PR_SET_PDEATHSIG). Tasks are
submitted with Ray's own `max_retries=0` so that every retry is the driver's, and recorded.
"""
from __future__ import annotations

import socket

from harness.matrix.tasks import TASKS
from harness.running import runner

SLOT = "dlrosetta_slot"
MAX_RETRIES = 2
EMBEDDED_OBJECT_STORE = 200 * 2**20  # rows are small: the embedded cluster needs no GBs of shared memory


def _execute(cell, opts, job):
    """Runs on a Ray worker: one process of the cell, through the same runner as locally."""
    import ray

    row = runner.run_cell(cell, opts, job=job)
    return row, {"node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}


def run(jobs, opts, on_row, progress, address: str | None = None, **_options) -> None:
    import ray
    from ray import exceptions as rex

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        else:  # an embedded cluster of this machine, with one slot: timed cells never overlap
            ray.init(num_cpus=1, resources={SLOT: 1}, object_store_memory=EMBEDDED_OBJECT_STORE,
                     log_to_driver=False, include_dashboard=False)
    timed = ray.remote(num_cpus=0, resources={SLOT: 1}, max_retries=0)(_execute)
    untimed = ray.remote(num_cpus=1, max_retries=0)(_execute)  # answer checks: may share a machine
    pending: dict = {}

    def submit(job, retries: int, reasons: list[str]) -> None:
        task = timed if TASKS[job.cell.task].timed else untimed
        pending[task.remote(job.cell, opts, job)] = (job, retries, reasons)

    for job in jobs:
        submit(job, 0, [])
    per_node: dict[str, int] = {}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in done:
                job, retries, reasons = pending.pop(ref)
                try:
                    row, node = ray.get(ref)
                except rex.RayTaskError as exc:  # the harness itself raised inside the task: a failed row
                    row, node = runner.base_row(job.cell, opts), {}
                    row.update(repeat=job.repeat, attempt=job.attempt, schedule=job.schedule, dir=job.dir,
                               status="failed", error=f"executor: {str(exc).strip().splitlines()[-1][:300]}")
                except rex.RayError as exc:  # the worker or its node died mid-cell: run it again
                    why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
                    if retries < MAX_RETRIES:
                        submit(job, retries + 1, reasons + [why])
                        continue
                    row, node = runner.base_row(job.cell, opts), {}
                    row.update(repeat=job.repeat, attempt=job.attempt, schedule=job.schedule, dir=job.dir,
                               status="failed", error=f"executor: gave up after {retries + 1} tries: {why}")
                row["executor"] = {"name": "ray", **node, "retries": retries, "retry_reasons": reasons}
                on_row(row)
                host = node.get("hostname", "?")
                per_node[host] = per_node.get(host, 0) + 1
                progress.begin(job.cell, job)
                progress.end(job.cell, row, where=f"{host}, {per_node[host]} done there")
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
