"""Between-process statistics of step times: a cell's spread over its processes, and B against A.

Framework-free (numpy + scipy.stats). The inputs are per-process step medians (seconds): one value per
process that timed the cell (`timing.step_s.median` of each row), so the spread seen here is the
between-process noise that a second run of the same code meets, not the within-process step jitter.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

# Measured on the 2-core reference VM (README, "Numbers you can trust": two runs of identical code, MNIST quick,
# 16 cells x 3 processes each, 2026-12-03): between two single processes of the same cell, |B/A - 1| had a
# median of 0.19 and a 95th percentile of 0.74 — this VM's processes shift level by up to 1.5-2x while each
# one's own steps stay within a few %. SINGLE_PROCESS_FLOOR is that 95th percentile: with one process per side
# only a change beyond it is called (a floor, not an interval). MIN_EFFECT: with >= 3 processes a difference must
# also be this large (practical significance, as asv's --factor), however tight the interval.
MIN_EFFECT = 0.10
SINGLE_PROCESS_FLOOR = 0.75
MIN_PROCESSES = 3  # per side, for a bootstrap interval of the ratio of medians
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


def _ratio_of_medians(a, b, axis):
    return np.median(b, axis=axis) / np.median(a, axis=axis)


def compare(a, b, floor: float = SINGLE_PROCESS_FLOOR) -> dict:
    """B against A for one cell, from the per-process step medians of each run.

    ratio = median(b) / median(a). With >= MIN_PROCESSES processes per side the verdict comes from the
    95 % bootstrap interval of that ratio: "slower"/"faster" only when the interval excludes 1 and the
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
        ci = _interval((np.asarray(xa), np.asarray(xb)), _ratio_of_medians)
        out.update(method="bootstrap", ci=list(ci) if ci else None)
        beyond = ci is not None and (ci[0] > 1 or ci[1] < 1) and abs(ratio - 1) > MIN_EFFECT
    else:
        out["method"] = "noise floor"
        beyond = abs(ratio - 1) > floor
    out["verdict"] = called if beyond else "same"
    return out
