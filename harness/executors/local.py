"""The local executor: every process in turn, on this machine, in the planned order."""
from __future__ import annotations

from harness.running import runner


def run(jobs, opts, on_row, progress, **_options) -> None:
    for job in jobs:
        progress.begin(job.cell, job)
        row = runner.run_cell(job.cell, opts, on_progress=progress.update, job=job)
        on_row(row)
        progress.end(job.cell, row)
