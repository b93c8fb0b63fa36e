"""`dlrosetta history RUN_DIR... [-o history.html] [--fail-on-regression]`: step time across runs.

The run dirs (different commits, dates, machines, framework versions) are put in time order (the earliest
start recorded in each: its rows' `started_at`, else environment.json's dates) and every cell (a row's
`cell` key) is followed through them. Step detection is done in the asv manner: a step is located between
two *consecutive* runs of the cell on the same machine, and is called only when it exceeds the measured
noise — the same test as `dlrosetta report A B` (reports.compare.compare_cell -> reports.stats.compare):
with >= 3 processes per side (`--repeat 3`) the 95 % t interval of the ratio, with the noise pooled over every
cell of the two runs, must exclude 1 and the ratio of medians be more than stats.MIN_EFFECT from 1; with fewer, the ratio must be beyond the single-process
noise floor stats.SINGLE_PROCESS_FLOOR. A cell that was ok and then failed, timed out or diverged is a
regression too. Runs on another machine (CPU, cores or host) are drawn but never compared with each other:
each machine has its own chain, and every place where the time order crosses machines is named in a note.

Writes the HTML page and history.json beside it (every run, every change, every note). Framework-free.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from harness.running.runner import SCHEMA
from reports import charts, stats
from reports.compare import compare_cell, process_steps, run_noise
from reports.data import Run, cell_key, get, load_run, number, series_label, sort_key, task_title
from reports.format import Col, ms, table
from reports.sections import nice_date

HERE = Path(__file__).resolve().parent
BAD_STATUSES = ("failed", "timeout", "diverged")
SYMBOLS = ("circle", "square", "diamond", "cross", "triangle-down", "star")  # one marker per machine
# what a "what changed" line names, from environment.json
CONTEXT = (("git_commit", "commit"), ("hostname", "host"), ("cpu", "CPU"), ("cores", "cores"),
           ("threads", "threads"), ("profile", "profile"), ("python", "Python"))


class HistoryError(ValueError):
    """Input the history cannot use (the cli turns it into a one-line error, exit 2)."""


@dataclass
class Point:
    """One run dir in the history."""
    run: Run
    when: pd.Timestamp | None
    index: int = 0  # position in time order, from 1
    machine: tuple = ()
    steps: dict = field(default_factory=dict)  # cell -> per-process step medians
    rows: dict = field(default_factory=dict)  # cell -> its row

    @property
    def name(self) -> str:
        return f"#{self.index} {self.run.path.name}"

    @property
    def commit(self) -> str:
        text = self.run.env.get("git_commit")
        return str(text)[:8] + ("-dirty" if str(text).endswith("-dirty") else "") if text else "no commit"


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------
def load_points(run_dirs) -> list[Point]:
    """The run dirs, checked and in time order; a HistoryError (one line) for anything unusable."""
    points, seen = [], {}
    for d in map(Path, run_dirs):
        if not (d / "results.jsonl").is_file():
            raise HistoryError(f"{d} is not a run dir: no results.jsonl in it")
        if d.resolve() in seen:
            raise HistoryError(f"{d} is given twice (also as {seen[d.resolve()]})")
        seen[d.resolve()] = d
        try:
            env = json.loads((d / "environment.json").read_text(errors="replace"))
        except (OSError, ValueError):
            raise HistoryError(f"{d}/environment.json is missing or not JSON") from None
        if not isinstance(env, dict):
            raise HistoryError(f"{d}/environment.json is not an object")
        run = load_run(d)
        if not run.all_rows:
            raise HistoryError(f"{d}/results.jsonl has no readable row"
                               + (f" ({run.notes[0]})" if run.notes else ""))
        schemas = sorted({str(r.get("schema", SCHEMA)) for r in run.all_rows})
        if schemas != [str(SCHEMA)]:
            raise HistoryError(f"{d}/results.jsonl has row schema {', '.join(schemas)}; this dlrosetta reads "
                               f"schema {SCHEMA} only")
        points.append(Point(run, start_time(run), machine=machine_of(env), steps=process_steps(run),
                            rows={cell_key(r): r for r in run.rows}))
    given = {id(p): i for i, p in enumerate(points)}
    points.sort(key=lambda p: (p.when is None, p.when or pd.Timestamp(0, tz="UTC"), given[id(p)]))
    for i, p in enumerate(points, 1):
        p.index = i
    return points


def start_time(run: Run) -> pd.Timestamp | None:
    """When the run began: its earliest row start, else the earliest date environment.json records
    (environment.json's own `date` is rewritten by every family's env that adds to the run)."""
    texts = [r.get("started_at") for r in run.all_rows] + [e.get("date") for e in run.env.get("environments") or []
                                                           if isinstance(e, dict)] + [run.env.get("date")]
    times = []
    for text in texts:
        if not isinstance(text, str):
            continue
        try:
            t = pd.Timestamp(text)
        except ValueError:
            continue
        times.append(t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC"))
    return min(times) if times else None


def machine_of(env: dict) -> tuple:
    """What makes two runs' times comparable: the same host, CPU model and core count (every host of a
    merged run)."""
    hosts = [h for h in env.get("hosts") or [] if isinstance(h, dict)] or [env]
    return tuple(sorted({(str(h.get("hostname")), str(h.get("cpu")), str(h.get("cores"))) for h in hosts}))


def machine_text(machine: tuple) -> str:
    return " + ".join(f"{cpu}, {cores} cores ({host})" for host, cpu, cores in machine)


# --------------------------------------------------------------------------------------------------
# what changed between two runs, and the steps
# --------------------------------------------------------------------------------------------------
def context(point: Point, cell: str | None = None) -> dict:
    """The run's commit, machine, threads and versions; threads and versions of the cell's own row where
    it has them (a run dir holds several family envs)."""
    env = point.run.env
    out = {label: env.get(key) for key, label in CONTEXT}
    if out["commit"]:  # 12 characters name a commit; the full one is in history.json's runs
        out["commit"] = str(out["commit"])[:12] + ("-dirty" if str(out["commit"]).endswith("-dirty") else "")
    row = point.rows.get(cell) if cell else None
    threads = get(row, "threads.threads")
    if threads is not None:
        out["threads"] = threads
    versions = dict(env.get("versions") or {})
    if isinstance(get(row, "versions"), dict):
        versions.update(row["versions"])
    return {**out, "versions": versions}


def what_changed(a: Point, b: Point, cell: str | None = None) -> list[str]:
    """["threads: 2 → 1", "jax 0.10.1 → 0.10.2", ...] between two runs (for one cell's row when given).
    Versions are those of packages both runs have (a run of one family's env lacks the others')."""
    ca, cb = context(a, cell), context(b, cell)
    out = [f"{k}: {ca[k]} → {cb[k]}" for _, k in CONTEXT if ca[k] != cb[k]]
    va, vb = ca["versions"], cb["versions"]
    return out + [f"{n} {va[n]} → {vb[n]}" for n in sorted(set(va) & set(vb)) if va[n] != vb[n]]


def detect(points: list[Point]) -> tuple[list[dict], list[str]]:
    """Every step (regression or improvement) beyond the noise, and the notes on what was not compared."""
    changes, notes = [], []
    cells = sorted({c for p in points for c in p.rows},
                   key=lambda c: sort_key(next(p.rows[c] for p in points if c in p.rows)))
    for cell in cells:
        for m in dict.fromkeys(p.machine for p in points):
            chain = [p for p in points if p.machine == m and cell in p.rows]
            for a, b in zip(chain, chain[1:]):
                change = step(cell, a, b)
                if change:
                    changes.append(change)
    for a, b in zip(points, points[1:]):
        if a.machine != b.machine:
            earlier = [p for p in points[:b.index - 1] if p.machine == b.machine]
            notes.append(f"{b.name} ran on another machine than {a.name} ({machine_text(b.machine)} vs "
                         f"{machine_text(a.machine)}): the two are not compared; "
                         + (f"{b.name} is compared with {earlier[-1].name}, the latest earlier run on its machine"
                            if earlier else f"{b.name} is the first run on its machine, so nothing is compared with it"))
    return changes, notes


def step(cell: str, a: Point, b: Point) -> dict | None:
    """The change of one cell from run a to the next run b on the same machine, or None (same, no estimate)."""
    ra, rb = a.rows[cell], b.rows[cell]
    base = {"cell": cell, "task": rb.get("task"), "label": label_of(rb), "framework": rb.get("framework"),
            "from": a.name, "to": b.name, "from_index": a.index, "to_index": b.index,
            "changed": what_changed(a, b, cell), "stability": stability_text(ra, rb)}
    if ra.get("status") == "ok" and rb.get("status") in BAD_STATUSES:
        return {**base, "kind": "regression", "verdict": "slower", "measure": "status", "ratio": None,
                "method": f"status ok → {rb.get('status')}", "detail": rb.get("error") or "", "ci": None,
                "time_a": None, "time_b": None, "n_a": 0, "n_b": 0}
    if ra.get("status") != "ok" or rb.get("status") != "ok":
        return None
    c = compare_cell(ra, rb, a.steps.get(cell), b.steps.get(cell), run_noise(a.steps, b.steps))
    if c["verdict"] not in ("slower", "faster"):
        return None
    return {**base, "kind": "regression" if c["verdict"] == "slower" else "improvement", "verdict": c["verdict"],
            "measure": c["measure"], "ratio": c["ratio"], "method": c["method"], "detail": c["detail"],
            "ci": c["ci"], "time_a": c["ma"], "time_b": c["mb"], "n_a": c["n_a"], "n_b": c["n_b"]}


def stability_text(ra: dict, rb: dict) -> str:
    """"before: 3 of 5 processes disturbed; after: all stable" — the caveat on a step measured under load
    (the flags the harness recorded; empty where it recorded none)."""
    parts = []
    for side, row in (("before", ra), ("after", rb)):
        flags = get(row, "processes.flags") or {}
        bad = {k: v for k, v in flags.items() if k != "stable"}
        if flags:
            total = sum(flags.values())
            parts.append(f"{side}: " + (", ".join(f"{v} of {total} processes {k}" for k, v in sorted(bad.items()))
                                        if bad else "all stable"))
    return "; ".join(parts) if any("processes" in p for p in parts) else ""


def label_of(row: dict) -> str:
    return series_label(row, True) + "".join(f" · {row[k]}" for k in ("dataset", "mode") if row.get(k))


# --------------------------------------------------------------------------------------------------
# charts: one line per cell and machine over the runs in time order
# --------------------------------------------------------------------------------------------------
def tick_labels(points: list[Point]) -> list[str]:
    """x labels: the run's number and commit, and what changed since the run before it."""
    out = []
    for i, p in enumerate(points):
        changed = [c for c in what_changed(points[i - 1], p) if not c.startswith("commit")] if i else []
        extra = changed[:3] + (["…"] if len(changed) > 3 else [])
        out.append("<br>".join([charts.esc(f"#{p.index} {p.commit}")] + [charts.esc(c) for c in extra]))
    return out


def times_of(point: Point, cell: str) -> tuple[list, str]:
    """The per-process step medians of a cell (else its train() time, once) and which measure it is."""
    steps = [v for v in point.steps.get(cell) or [] if number(v)]
    if steps:
        return steps, "step"
    train = number(get(point.rows.get(cell), "timing.train_s"))
    return ([train] if train else []), "train"


def task_charts(task: str, points: list[Point], changes: list[dict]) -> list:
    ticks = tick_labels(points)
    cells = sorted({c for p in points for c, r in p.rows.items() if r.get("task") == task},
                   key=lambda c: sort_key(next(p.rows[c] for p in points if c in p.rows)))
    machines = list(dict.fromkeys(p.machine for p in points))
    time_traces, quality_traces = [], []
    quality_path = ("metrics.test_accuracy" if any(get(p.rows.get(c), "metrics.test_accuracy") is not None
                                                   for p in points for c in cells) else "metrics.test_mse")
    for cell in cells:
        for mi, m in enumerate(machines):
            chain = [p for p in points if p.machine == m and cell in p.rows]
            if not chain:
                continue
            row = chain[-1].rows[cell]
            name = charts.esc(label_of(row) + (f" · machine {mi + 1}" if len(machines) > 1 else ""))
            style = dict(line=dict(color=charts.color(row.get("framework")), width=2,
                                   dash=charts.DASHES[charts.variant_index(row) % len(charts.DASHES)]),
                         marker=dict(size=7, symbol=SYMBOLS[mi % len(SYMBOLS)]), mode="lines+markers",
                         name=name, legendgroup=name)
            xs, ys, lo, hi, hover = [], [], [], [], []
            for p in chain:
                values, measure = times_of(p, cell)
                s = stats.process_summary(values) if p.rows[cell].get("status") == "ok" else None
                if not s or s["median"] is None:
                    continue
                xs.append(ticks[p.index - 1])
                ys.append(ms(s["median"]))
                hi.append(ms(s["max"] - s["median"]))
                lo.append(ms(s["median"] - s["min"]))
                hover.append(f"{measure} median over {s['n']} process(es)"
                             + (f", 95 % CI {ms(s['ci_low']):.4g}–{ms(s['ci_high']):.4g} ms" if s["ci_low"] else ""))
            if xs:
                time_traces.append(go.Scatter(
                    x=xs, y=ys, customdata=hover, **style,
                    error_y=dict(type="data", array=hi, arrayminus=lo, symmetric=False, thickness=1, width=3),
                    hovertemplate=f"<b>{name}</b><br>%{{y:.4g}} ms<br>%{{customdata}}<extra></extra>"))
            qx = [ticks[p.index - 1] for p in chain if number(get(p.rows[cell], quality_path)) is not None]
            qy = [number(get(p.rows[cell], quality_path)) for p in chain
                  if number(get(p.rows[cell], quality_path)) is not None]
            if qx:
                percent = quality_path.endswith("accuracy")
                quality_traces.append(go.Scatter(x=qx, y=[100 * v for v in qy] if percent else qy, **style,
                                                 showlegend=False,
                                                 hovertemplate=f"<b>{name}</b><br>%{{y:.5g}}<extra></extra>"))
    if not time_traces:
        return []
    for kind, color, symbol in (("regression", "#C53030", "triangle-up"), ("improvement", "#2F855A", "triangle-down")):
        marks = [(ticks[c["to_index"] - 1], ms(c["time_b"])) for c in changes
                 if c["task"] == task and c["kind"] == kind and c["time_b"]]
        if marks:
            time_traces.append(go.Scatter(x=[x for x, _ in marks], y=[y for _, y in marks], mode="markers",
                                          name=f"{kind} (beyond noise)", hoverinfo="skip",
                                          marker=dict(size=16, color=color, symbol=symbol + "-open",
                                                      line=dict(width=2))))
    xaxis = dict(type="category", categoryorder="array", categoryarray=ticks, tickangle=0)
    title = task_title(task)
    out = [charts.make(f"{title}: step time per run", time_traces,
                       charts.layout(title, ytitle="step time (ms)", height=380, xaxis=xaxis,
                                     yaxis=dict(rangemode="tozero")),
                       note="median over processes; bars: min–max over processes. Open triangles: a step beyond "
                            "the measured noise against the cell's previous run on the same machine.")]
    if quality_traces:
        quality = "test accuracy (%)" if quality_path.endswith("accuracy") else "test MSE"
        out.append(charts.make(f"{title}: {quality}", quality_traces,
                               charts.layout(title, ytitle=quality, height=380, xaxis=xaxis),
                               note="the full run of each cell (repeat 0)"))
    return out


# --------------------------------------------------------------------------------------------------
# the page and history.json
# --------------------------------------------------------------------------------------------------
@dataclass
class History:
    points: list[Point]
    changes: list[dict]
    notes: list[str]
    html: Path
    json: Path

    @property
    def regressions(self) -> list[dict]:
        return [c for c in self.changes if c["kind"] == "regression"]

    @property
    def improvements(self) -> list[dict]:
        return [c for c in self.changes if c["kind"] == "improvement"]


def run_entry(p: Point, previous: Point | None) -> dict:
    return {"index": p.index, "path": str(p.run.path), "run_id": p.run.run_id,
            "started": p.when.isoformat() if p.when is not None else None, "commit": p.run.env.get("git_commit"),
            "machine": machine_text(p.machine), "threads": p.run.env.get("threads"),
            "profile": p.run.env.get("profile"), "versions": p.run.env.get("versions") or {},
            "changed": what_changed(previous, p) if previous else []}


def build(run_dirs, output="history.html") -> History:
    """Load, detect, and write the HTML page and history.json beside it."""
    from reports.render import _script_safe, template_env

    points = load_points(run_dirs)
    changes, notes = detect(points)
    notes += [f"{p.name} records no start time: placed after the dated runs" for p in points if p.when is None]
    notes += [f"{p.name}: {n}" for p in points for n in p.run.notes]
    out = Path(output)
    runs = [run_entry(p, points[i - 1] if i else None) for i, p in enumerate(points)]
    tasks = [t for t in dict.fromkeys(r.get("task") for p in points for r in p.run.rows)]
    tasks.sort(key=lambda t: sort_key({"task": t}))
    cols = [Col("kind", "change", "verdict"), Col("task", "task"), Col("label", "cell"), Col("from", "from run"),
            Col("to", "to run"), Col("time_a", "before (ms)", "ms"), Col("time_b", "after (ms)", "ms"),
            Col("ratio", "after / before", "ratio"), Col("method", "noise test"),
            Col("changed_text", "what changed", "text"), Col("stability", "measured under load", "text"),
            Col("detail", "detail", "detail")]
    shown = [{**c, "kind": "slower" if c["kind"] == "regression" else "faster",
              "time_a": ms(c["time_a"]), "time_b": ms(c["time_b"]),
              "changed_text": "; ".join(c["changed"]) or "nothing recorded"} for c in changes]
    ctx = {
        "title": "dlrosetta history", "generated": time.strftime("%Y-%m-%d %H:%M"), "runs": runs,
        "dates": {r["index"]: nice_date(r["started"]) for r in runs},
        "changes": table(cols, shown, "history.csv"), "notes": notes,
        "counts": {"regression": sum(c["kind"] == "regression" for c in changes),
                   "improvement": sum(c["kind"] == "improvement" for c in changes)},
        "tasks": [{"task": t, "title": task_title(t), "charts": task_charts(t, points, changes)} for t in tasks],
        "min_effect": stats.MIN_EFFECT, "floor": stats.SINGLE_PROCESS_FLOOR, "min_processes": stats.MIN_PROCESSES,
        "css": Markup((HERE / "static" / "report.css").read_text()),
        "js": Markup(_script_safe((HERE / "static" / "report.js").read_text())),
        "plotly_js": Markup(_script_safe(get_plotlyjs())),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(template_env().get_template("history.html.j2").render(**ctx), encoding="utf-8")
    json_path = out.parent / "history.json"
    json_path.write_text(json.dumps({"runs": runs, "changes": changes, "notes": notes,
                                     "method": {"min_effect": stats.MIN_EFFECT, "floor": stats.SINGLE_PROCESS_FLOOR,
                                                "min_processes": stats.MIN_PROCESSES}}, indent=1, default=str))
    return History(points, changes, notes, out, json_path)
