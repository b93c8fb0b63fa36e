"""Between-process statistics of step times: a cell's spread over its processes, and B against A.

Framework-free (numpy + scipy.stats). The inputs are per-process step medians (seconds): one value per
process that timed the cell (`timing.step_s.median` of each row), so the spread seen here is the
between-process noise that a second run of the same code meets, not the within-process step jitter.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

# Measured on the 2-core reference VM (README, "Numbers you can trust", two calibrations of 2026-12-03: two runs
# of identical code and --threads 1 against 2, MNIST quick, 16-18 cells x 3 processes a run). Between two single
# processes of the same cell |B/A - 1| had a median of 0.19 and a 95th percentile of 0.74: this VM's processes
# shift level while each one's own steps stay within a few %. SINGLE_PROCESS_FLOOR is that 95th percentile: with
# one process per side only a change beyond it is called (a floor, not an interval).
# With >= MIN_PROCESSES per side the test is Student's t on log step times with the noise *pooled over every cell
# of both runs* (the within-cell spread of log step time, sd 0.13-0.19 in the calibrations): three processes
# alone estimate a cell's spread too poorly to call a 1.3x change (the per-cell bootstrap missed 4 of 23 cells
# >= 25 % slower with one thread; the pooled test missed 1), and the machine's noise is one property shared by
# its cells. MIN_EFFECT: a difference must also be this large (practical significance, as asv's --factor),
# however tight the interval: 0.10 let 1 of 18 identical cells through in the second calibration, 0.15 none,
# and it is about one process's own level noise (sd 0.13).
MIN_EFFECT = 0.15
SINGLE_PROCESS_FLOOR = 0.75
MIN_PROCESSES = 3  # per side, for an interval of the ratio
CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0  # fixed: the same rows always give the same interval and verdict

VERDICTS = ("faster", "slower", "same", "no estimate")


def finite(values) -> list[float]:
    """The finite numbers among values (None, text, NaN and inf left out)."""
    out = []
    for v in values or []:
        if isinstance(v, bool):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def _interval(data: tuple, statistic) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of statistic over the samples in data (None where undefined)."""
    res = stats.bootstrap(data, statistic, paired=False, vectorized=True, method="percentile",
                          confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES, rng=SEED)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def process_summary(values) -> dict:
    """{"median", "min", "max", "n", "ci_low", "ci_high"} of per-process values; the CI (95 % bootstrap of
    the median) needs two values or more. Empty input: every figure None and n 0."""
    x = finite(values)
    if not x:
        return {"median": None, "min": None, "max": None, "n": 0, "ci_low": None, "ci_high": None}
    ci = _interval((np.asarray(x),), lambda s, axis: np.median(s, axis=axis)) if len(x) >= 2 else None
    return {"median": float(np.median(x)), "min": min(x), "max": max(x), "n": len(x),
            "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None}


def pooled_noise(groups) -> tuple[float, int] | None:
    """(sd, degrees of freedom) of log step time within a cell, pooled over `groups` (each the per-process
    step medians of one cell in one run; groups of one value add nothing). None without any spread to go on."""
    squares, df = 0.0, 0
    for values in groups:
        logs = np.log([v for v in finite(values) if v > 0])
        if len(logs) >= 2:
            squares += float(((logs - logs.mean()) ** 2).sum())
            df += len(logs) - 1
    return (math.sqrt(squares / df), df) if df else None


def compare(a, b, floor: float = SINGLE_PROCESS_FLOOR, noise: tuple[float, int] | None = None) -> dict:
    """B against A for one cell, from the per-process step medians of each run.

    ratio = median(b) / median(a). With >= MIN_PROCESSES processes per side the verdict comes from the 95 %
    interval of the ratio of geometric means, Student's t with `noise` = pooled_noise over every cell of the
    comparison (default: these two cells alone): "slower"/"faster" only when the interval excludes 1 and the
    ratio is more than MIN_EFFECT away from 1. With fewer processes there is no interval: the ratio must be
    beyond `floor` (method "noise floor"). No positive value on a side: "no estimate"."""
    xa, xb = [v for v in finite(a) if v > 0], [v for v in finite(b) if v > 0]
    out = {"ratio": None, "verdict": "no estimate", "method": None, "ci": None, "n_a": len(xa), "n_b": len(xb)}
    if not xa or not xb:
        return out
    ratio = float(np.median(xb) / np.median(xa))
    out["ratio"] = ratio
    called = "slower" if ratio > 1 else "faster"
    if len(xa) >= MIN_PROCESSES and len(xb) >= MIN_PROCESSES:
        sd, df = noise or pooled_noise([xa, xb])
        diff = float(np.log(xb).mean() - np.log(xa).mean())
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * sd * math.sqrt(1 / len(xa) + 1 / len(xb))
        ci = [math.exp(diff - half), math.exp(diff + half)]
        out.update(method="pooled t", ci=ci, noise_sd=sd, noise_df=df)
        beyond = (ci[0] > 1 or ci[1] < 1) and abs(ratio - 1) > MIN_EFFECT
    else:
        out["method"] = "noise floor"
        beyond = abs(ratio - 1) > floor
    out["verdict"] = called if beyond else "same"
    return out
