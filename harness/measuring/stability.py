"""Was the machine quiet while a cell was timed? CPU taken by other processes, steal, step spread.

A cell process takes a `Snapshot` when its timed phase starts and another when it ends; `judge`
turns the pair (and the steady-state step times) into the row's ``stability`` block:

- ``others_cpu``: cores that *other* processes used on average during the window — the machine's busy
  time from /proc/stat (user + nice + system + irq + softirq) minus this process's own CPU time
  (getrusage: every thread, plus children it waited for), per wall second.
- ``steal``: cores the hypervisor gave to other guests (the /proc/stat steal column), per wall second.
- ``step_cv``: robust spread of the steady-state step times, 1.4826 * MAD / median (a normal
  distribution's CV, unmoved by a few outliers such as a garbage-collection pause).
- ``cpu_per_wall``: this process's own CPU seconds per wall second: with ``--threads N`` it stays at or
  under N (the runner pins the process to N cores), which is how the thread limit is verified.

flag: ``disturbed`` when other processes or steal took CPU (the cell's time is not its own),
``unstable`` when nothing else ran but the steps still spread widely, else ``stable``.
Framework-free and cheap: two reads of /proc/stat per cell.
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

import numpy as np

# Thresholds, measured on the 2-core reference VM on 2026-12-03 (README, "Numbers you can trust"): 144 quiet
# MNIST-quick processes (pytorch, tf2, jax, keras-jax; 2 and 1 threads) saw others_cpu 0.000-0.065 cores and
# steal 0, and step_cv median 0.10-0.12, at most 0.31; the same cells beside one `yes > /dev/null` burner saw
# others_cpu 0.99-1.00 (all 8 flagged disturbed), and the test's busy cell beside two burners 1.0-1.9. The
# limits sit well above quiet and well below one burner. A burner slows steps evenly (step_cv 0.05), so the
# CPU accounting, not the spread, is what catches it.
OTHERS_CPU_LIMIT = 0.30  # cores used by other processes, on average over the timed window
STEAL_LIMIT = 0.20  # cores stolen by the hypervisor, on average
STEP_CV_LIMIT = 0.35  # robust CV of the steady-state steps (MNIST: steps of 1.5-500 ms)
# Linear regression's full-batch steps take 0.5-3 ms of which most is the framework's per-call overhead, and
# their spread is the interpreter's and the allocator's, not the machine's: in the quiet full bench of
# 2026-12-03 (fresh clone of 3c6466e, 59 quiet linear-regression processes) step_cv reached 0.47 (median 0.2),
# so 0.35 flagged 9 of them "unstable" with nothing else running. Their limit sits above that; a burner is
# caught by the CPU accounting, not the spread.
STEP_CV_LIMITS = {"linreg": 0.60}  # task kind -> limit; the rest use STEP_CV_LIMIT
MIN_WINDOW_S = 0.5  # a shorter timed window is judged on the whole process's lifetime instead
MIN_STEPS_FOR_CV = 10

THRESHOLDS = {"others_cpu": OTHERS_CPU_LIMIT, "steal": STEAL_LIMIT, "step_cv": STEP_CV_LIMIT,
              "min_window_s": MIN_WINDOW_S}
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Snapshot:
    wall: float
    busy: float | None  # machine-wide busy CPU seconds (None where /proc/stat is missing)
    steal: float | None
    own: float  # this process's CPU seconds (and its waited-for children's)


def machine_cpu() -> tuple[float | None, float | None]:
    """(busy, steal) CPU seconds of the whole machine since boot, from the first line of /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None, None
    if not fields or fields[0] != "cpu":
        return None, None
    values = [int(v) for v in fields[1:]] + [0] * 8
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq) / _TICK, steal / _TICK


def own_cpu() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def snapshot() -> Snapshot:
    busy, steal = machine_cpu()
    return Snapshot(time.perf_counter(), busy, steal, own_cpu())


def robust_cv(values) -> float | None:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size < MIN_STEPS_FOR_CV:
        return None
    med = float(np.median(arr))
    if med <= 0:
        return None
    return float(1.4826 * np.median(np.abs(arr - med)) / med)


def window(start: Snapshot, end: Snapshot) -> dict:
    """CPU use of others, steal and own CPU per wall second between two snapshots."""
    wall = max(end.wall - start.wall, 1e-9)
    own = end.own - start.own
    out = {"window_s": wall, "cpu_per_wall": own / wall, "others_cpu": None, "steal": None}
    if start.busy is not None and end.busy is not None:
        out["others_cpu"] = max(0.0, (end.busy - start.busy) - own) / wall
        out["steal"] = max(0.0, end.steal - start.steal) / wall
    return out


PROBE_SHAPE = (128, 784, 256)  # the MNIST MLP's first layer at batch 128: small GEMMs like the cells'
PROBE_REPS = 30


def probe() -> float:
    """The machine's speed right now, in GFLOP/s of a fixed float32 matmul (numpy's BLAS, under the
    process's own affinity and thread limits): the median of PROBE_REPS calls, about 20-50 ms in all.
    Taken just before and just after the timed phase, it tells a slow process on a slow moment of the
    machine (a busy neighbour of the VM, which no /proc counter shows) from a slow framework."""
    m, k, n = PROBE_SHAPE
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    times = []
    for _ in range(PROBE_REPS):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * m * k * n / float(np.median(times)) / 1e9


def judge(measured: dict, step_times, kind: str | None = None) -> dict:
    """The row's `stability` block: the measurements, the flag and the reasons for it (`kind`: the task's
    kind, which picks the step-spread limit)."""
    cv_limit = STEP_CV_LIMITS.get(kind, STEP_CV_LIMIT)
    block = {**measured, "step_cv": robust_cv(step_times), "n_steps": len(step_times or []),
             "thresholds": {**THRESHOLDS, "step_cv": cv_limit}, "reasons": []}
    reasons = block["reasons"]
    if block.get("others_cpu") is not None and block["others_cpu"] > OTHERS_CPU_LIMIT:
        reasons.append(f"other processes used {block['others_cpu']:.2f} cores")
    if block.get("steal") is not None and block["steal"] > STEAL_LIMIT:
        reasons.append(f"the hypervisor stole {block['steal']:.2f} cores")
    disturbed = bool(reasons)
    if block["step_cv"] is not None and block["step_cv"] > cv_limit:
        reasons.append(f"steady steps spread by CV {block['step_cv']:.2f}")
    block["flag"] = "disturbed" if disturbed else ("unstable" if reasons else "stable")
    return block
