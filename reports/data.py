"""A run dir as the report sees it: rows (deduplicated, ordered), environment, optional parity rows and
the optional cross-framework ONNX check (onnx_cross.json, written by `python -m harness.checks.onnx_cross`).

Framework-free: this reads JSON files with pandas and the registry's metadata (names, titles,
variant order), and never imports an implementation.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.matrix.registry import FRAMEWORKS, variants
from harness.matrix.tasks import TASKS
from harness.running.runner import read_rows

STATUSES = ("ok", "diverged", "failed", "timeout", "not_applicable", "unavailable")


@dataclass
class Run:
    path: Path
    env: dict
    rows: list[dict]
    parity: list[dict] = field(default_factory=list)
    onnx_cross: dict | None = None  # onnx_cross.json, when present and readable
    notes: list[str] = field(default_factory=list)  # files present but unreadable, said in the report
    all_rows: list[dict] = field(default_factory=list)  # every process row (repeats, re-runs), as read

    @property
    def run_id(self) -> str:
        return str(self.env.get("run_id") or next((r.get("run_id") for r in self.rows if r.get("run_id")), "")
                   or self.path.name)

    @property
    def frame(self) -> pd.DataFrame:
        """Every row flattened (metrics.test_accuracy, timing.step_s.median, spec.batch_size, ...);
        list-valued fields (curves, trajectories, per-epoch times) are left out."""
        df = pd.json_normalize(self.rows)
        lists = [c for c in df.columns if df[c].map(lambda v: isinstance(v, (list, tuple))).any()]
        return df.drop(columns=lists)


def load_run(run_dir) -> Run:
    path = Path(run_dir)
    notes: list[str] = []
    all_rows = checked_rows(path / "results.jsonl", notes)
    rows = with_processes(dedupe(all_rows), all_rows)
    env = {}
    if (path / "environment.json").exists():
        try:
            env = json.loads((path / "environment.json").read_text(errors="replace"))
        except ValueError:
            env = {}
        if not isinstance(env, dict):
            env = {}
    parity = dedupe(checked_rows(path / "parity.jsonl", notes)) if (path / "parity.jsonl").exists() else []
    cross = load_onnx_cross(path, notes)
    return Run(path, env, sort_rows(rows), sort_rows(parity), cross, notes, all_rows)


# the structural fields of a row and the types a reader relies on (anything else is read defensively)
ROW_TYPES = {"cell": str, "task": str, "framework": str, "variant": (str, type(None)), "status": (str, type(None)),
             "params": (dict, type(None)), "metrics": (dict, type(None)), "timing": (dict, type(None)),
             "memory": (dict, type(None)), "onnx": (dict, type(None)), "deploy": (dict, type(None)), "precision": (dict, type(None)), "stability": (dict, type(None)),
             "spec": (dict, type(None)), "repeat": (int, type(None)), "dataset": (str, type(None)),
             "mode": (str, type(None)), "device": (str, type(None)), "error": (str, type(None))}


def checked_rows(path: Path, notes: list[str]) -> list[dict]:
    """The rows of a results file that a reader can use; every other line is named in `notes` with its
    file and line number (not JSON, not an object, a field of the wrong type), never raised. A torn last
    line (a run killed mid-write) is left out silently, as `read_rows` does."""
    rows: list[dict] = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        notes.append(f"{path.name} could not be read ({exc.strerror or exc})")
        return rows
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if number < len(lines):
                notes.append(f"{path.name} line {number}: not JSON, left out")
            continue
        if not isinstance(row, dict):
            notes.append(f"{path.name} line {number}: not a JSON object, left out")
            continue
        bad = [k for k, types in ROW_TYPES.items()
               if (k in row or k in ("task", "framework")) and not isinstance(row.get(k), types)
               and not (k == "cell" and k not in row)]
        if isinstance(row.get("repeat"), bool):
            bad.append("repeat")
        if bad:
            notes.append(f"{path.name} line {number}: {', '.join(bad)} missing or of the wrong type, left out")
            continue
        rows.append(row)
    return rows


def load_onnx_cross(path: Path, notes: list[str]) -> dict | None:
    """RUN_DIR/onnx_cross.json as a dict; None when absent, and None plus a note when it cannot be read
    (truncated, not JSON, not an object with a list of groups)."""
    file = path / "onnx_cross.json"
    if not file.exists():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"onnx_cross.json could not be read ({type(exc).__name__}: {str(exc)[:200]})")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list) \
            or not all(isinstance(g, dict) for g in data["groups"]):
        notes.append("onnx_cross.json is not a cross-check result (no list of groups): left out")
        return None
    return data


def cell_key(row: dict) -> str:
    if row.get("cell"):
        return row["cell"]
    params = "/".join(f"{k}={v}" for k, v in sorted((row.get("params") or {}).items()))
    return "/".join(str(x) for x in (row.get("task"), row.get("framework"), row.get("variant"), row.get("device"),
                                     row.get("dataset"), row.get("mode"), params) if x)


def flag_of(row: dict) -> str | None:
    """The process's stability flag (None where the harness recorded none: old runs, untimed cells)."""
    stability = row.get("stability")
    return stability.get("flag") if isinstance(stability, dict) else None


def chosen_processes(rows: list[dict]) -> dict[tuple, dict]:
    """(cell, repeat) -> the row that stands for that process: a stable attempt if any (the latest of
    them), else the latest; an `unavailable` row (a family's env that lacks this framework) never
    replaces a real result from the env that has it."""
    chosen: dict[tuple, dict] = {}
    for row in rows:
        key = (cell_key(row), row.get("repeat") or 0)
        old = chosen.get(key)
        if old is None or old.get("status") == "unavailable":
            chosen[key] = row
        elif row.get("status") == "unavailable":
            continue
        elif flag_of(old) == "stable" and flag_of(row) != "stable":
            continue
        else:
            chosen[key] = row
    return chosen


def dedupe(rows: list[dict]) -> list[dict]:
    """One row per cell: its full run (repeat 0), chosen as `chosen_processes` says."""
    out: dict[str, dict] = {}
    for (cell, repeat), row in chosen_processes(rows).items():
        if repeat == 0 or cell not in out:
            out[cell] = row
    return list(out.values())


def with_processes(rows: list[dict], all_rows: list[dict]) -> list[dict]:
    """Each cell's row with a reader-computed `processes` block: the between-process summary of the
    per-process step medians (stats.process_summary) and the stability flags seen. Where a cell has
    more than one process, `timing.step_s.median` shows the median over processes (the process's own
    median stays in `timing.step_s.process_median`). Rows are copied, never changed in place."""
    from reports.stats import process_summary

    steps: dict[str, list] = {}
    flags: dict[str, dict] = {}
    for (cell, _), row in chosen_processes(all_rows).items():
        if row.get("status") == "ok":
            steps.setdefault(cell, []).append(get(row, "timing.step_s.median"))
        flag = flag_of(row)
        if flag:
            flags.setdefault(cell, {}).setdefault(flag, 0)
            flags[cell][flag] += 1
    out = []
    for row in rows:
        cell = cell_key(row)
        summary = process_summary(steps.get(cell, []))
        row = dict(row)
        row["processes"] = {**summary, "flags": flags.get(cell, {})}
        step = row.get("timing", {}).get("step_s") if isinstance(row.get("timing"), dict) else None
        if summary["n"] > 1 and isinstance(step, dict):
            row["timing"] = dict(row["timing"], step_s={**step, "process_median": step.get("median"),
                                                        "median": summary["median"]})
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------------
# order and labels
# --------------------------------------------------------------------------------------------------
def task_order(task) -> int:
    return list(TASKS).index(task) if task in TASKS else len(TASKS)


def framework_order(fw) -> int:
    return list(FRAMEWORKS).index(fw) if fw in FRAMEWORKS else len(FRAMEWORKS)


def variant_order(task, fw, variant) -> int:
    try:
        names = list(variants(task, fw)) if task in TASKS and fw in FRAMEWORKS else []
    except (OSError, SyntaxError, ValueError):
        names = []
    return names.index(variant) if variant in names else len(names)


def params_text(row: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((row.get("params") or {}).items()))


def config_key(row: dict) -> tuple:
    """A matrix row: the task and everything but the framework/variant that defines the cell."""
    return (row.get("task"), row.get("dataset") or "", row.get("mode") or "", params_text(row), row.get("device") or "")


def sort_key(row: dict) -> tuple:
    task, fw, variant = row.get("task"), row.get("framework"), row.get("variant")
    return (task_order(task), str(task), row.get("dataset") or "", mode_order(row.get("mode")),
            params_sort(row), row.get("device") or "", framework_order(fw), str(fw),
            variant_order(task, fw, variant), str(variant))


def mode_order(mode) -> tuple:
    order = ("full-batch", "minibatch", "sgd")
    return (order.index(mode) if mode in order else len(order), mode or "")


def params_sort(row) -> tuple:
    out = []
    for k, v in sorted((row.get("params") or {}).items()):
        out.append((k, (0, float(v), "") if isinstance(v, (int, float)) else (1, 0.0, str(v))))
    return tuple(out)


def sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=sort_key)


def framework_title(fw: str) -> str:
    return FRAMEWORKS[fw].title if fw in FRAMEWORKS else str(fw)


def series_label(row: dict, with_params: bool = False) -> str:
    label = f"{row.get('framework')}/{row.get('variant')}"
    if with_params and row.get("params"):
        label += " " + params_text(row)
    return label


def host_label(row: dict) -> str:
    """The machine a row was timed on, as a short label ("AMD EPYC · 2 cores", plus the GPU and the
    hostname where known); "" for rows that do not say (runs from before hosts were recorded)."""
    host = row.get("host") if isinstance(row.get("host"), dict) else {}
    parts = [host.get("cpu"), f"{host['cores']} cores" if host.get("cores") else None, host.get("gpu"),
             host.get("hostname")]
    return " · ".join(str(p) for p in parts if p)


def machines(rows: list[dict]) -> list[str]:
    """The distinct machines of a run's rows, in order of appearance (merged shards may hold several)."""
    return list(dict.fromkeys(h for h in (host_label(r) for r in rows) if h))


def task_title(task: str) -> str:
    return TASKS[task].title if task in TASKS else str(task)


# --------------------------------------------------------------------------------------------------
# safe access
# --------------------------------------------------------------------------------------------------
def get(row: dict | None, path: str, default=None):
    """get(row, "timing.step_s.median") -> value or default (also for missing / null parents)."""
    cur = row
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return default if cur is None else cur


def first_of(row: dict | None, *paths):
    """The first of several paths that has a value (fields renamed or computed differently)."""
    for path in paths:
        value = get(row, path)
        if value is not None:
            return value
    return None


def number(value) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
