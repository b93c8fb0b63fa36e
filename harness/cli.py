"""The `dlrosetta` command: list, run, parity, report.

Exit codes: 0 every cell ok, 1 some cell failed (after a summary), 2 usage error (one line).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import shlex
import signal
import sys
import time
import uuid
from pathlib import Path

from harness.matrix.registry import FAMILIES, FRAMEWORKS, applicability, enumerate_cells, missing_packages, variants
from harness.matrix.tasks import PRECISIONS, PROFILES, TASKS, SpecError, coerce_override, task_accepts
from harness.measuring import environment


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, instead of argparse's usage dump
        raise UsageError(message)


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def number_type(kind, low=None, high=None, low_inclusive=True, describe=None):
    """An argparse type for a numeric flag: the value parsed and range-checked, or one line naming
    the allowed range (argparse adds the flag's name: "argument --timeout: ...")."""
    def parse(text: str):
        what = describe or _range_text(kind, low, high, low_inclusive)
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        high_value = high() if callable(high) else high
        if (low is not None and (value < low or (value == low and not low_inclusive))) or \
                (high_value is not None and value > high_value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


def _range_text(kind, low, high, low_inclusive) -> str:
    noun = "an integer" if kind is int else "a number"
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_inclusive else '>'} {low:g}")
    if high is not None:
        parts.append(f"<= {high() if callable(high) else high:g}")
    return f"{noun} {' and '.join(parts)}".strip()


def _cores() -> int:
    from harness.running.runner import allowed_cpus

    return len(allowed_cpus())


def _memory_gb() -> float:
    return environment.memory_gb() or 1e6


def build_parser() -> Parser:
    p = Parser(prog="dlrosetta", description="The same deep-learning tasks in every framework, measured fairly.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    ls = sub.add_parser("list", help="every cell of the matrix and whether its framework is installed here")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    add_selection(ls)

    run = sub.add_parser("run", help="run cells, each in its own process, into a run dir")
    add_selection(run)
    add_run_options(run)
    run.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                     help="one cell per value of a spec setting, e.g. batch_size=32,128,512 (repeatable)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a spec setting for every selected cell, e.g. epochs=1")
    run.add_argument("--precision", type=csv_list, default=["fp32"], metavar="P1,P2",
                     help=f"numerics of the MNIST cells, one cell per value: {', '.join(PRECISIONS)} (default fp32; "
                          "mixed: float32 weights, bfloat16 compute; bf16: both in bfloat16)")
    run.add_argument("--repeat", type=number_type(int, 1, 1000), default=_env_int("DLROSETTA_REPEAT", 1),
                     help="processes per cell: 1 full run + N-1 timing-only, interleaved (default 1; env DLROSETTA_REPEAT)")
    run.add_argument("--rerun-disturbed", type=number_type(int, 0, 100), default=0, metavar="K",
                     help="re-run disturbed or unstable processes up to K times at the end (default 0)")
    run.add_argument("--order-seed", type=number_type(int, 0, 2**32 - 1), default=0, metavar="S",
                     help="seed of the shuffled order of each round with --repeat > 1 (default 0)")
    run.add_argument("--track", type=csv_list, default=csv_list(os.environ.get("DLROSETTA_TRACK", "")),
                     help="tracking sinks fed with every row: mlflow, tensorboard (env DLROSETTA_TRACK)")
    run.add_argument("--tracking-uri", default=None,
                     help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else a SQLite store in the run dir)")
    run.add_argument("--dry-run", action="store_true", help="print the processes that would run, in order, and stop")
    run.add_argument("--executor", default="local", choices=("local", "ray"),
                     help="where the processes run: local (one at a time here) or ray (tasks on a Ray cluster)")
    run.add_argument("--ray-address", default=None, metavar="ADDR",
                     help="with --executor ray: the cluster to join (default: start an embedded local one)")

    par = sub.add_parser("parity", help="train every column from the same weights and compare loss curves")
    add_selection(par, default_tasks="mnist_mlp,mnist_cnn,linear_regression,tanh_regression")
    add_run_options(par)
    par.add_argument("--steps", type=number_type(int, 1), default=100, help="training steps per column (default 100)")

    mrg = sub.add_parser("merge", help="join shard run dirs (one per machine or CI job) into one run dir")
    mrg.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="the shards' run dirs")
    mrg.add_argument("-o", "--output", required=True, help="the merged run dir to create")
    mrg.add_argument("--allow-mismatch", action="store_true",
                     help="merge shards of different commits, profiles, inits or settings anyway")

    his = sub.add_parser("history", help="step time of every cell across run dirs in time order, with regressions")
    his.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run dirs of any commits, dates, machines, versions")
    his.add_argument("-o", "--output", default="history.html",
                     help="HTML file to write, history.json beside it (default history.html)")
    his.add_argument("--fail-on-regression", action="store_true",
                     help="exit 1 when a step beyond the measured noise is a regression")

    rep = sub.add_parser("report", help="render a run dir into one self-contained HTML file")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                     help="a run dir; with two, the second is compared against the first")
    rep.add_argument("-o", "--output", help="HTML file to write (default RUN_DIR/report.html)")

    gd = sub.add_parser("guide", help="the idiom guide alone as a static site (no run dir, no framework needed)")
    gd.add_argument("-o", "--output", default="site", help="folder to write the site into (default site/)")
    gd.add_argument("--tasks", type=csv_list, default=None, help=f"only these tasks (default: all): {', '.join(TASKS)}")
    gd.add_argument("--repo-url", default=None,
                    help="the repository's web address for file and line links (default: the origin remote; "
                         "without one the site holds copies of the files)")
    gd.add_argument("--ref", default=None, help="commit or branch of those links (default: the checked-out commit)")
    return p


def add_selection(p, default_tasks: str | None = None) -> None:
    p.add_argument("--tasks", type=csv_list, default=csv_list(default_tasks) if default_tasks else None,
                   help=f"comma-separated tasks (default: all): {', '.join(TASKS)}")
    p.add_argument("--frameworks", type=csv_list, default=None,
                   help=f"comma-separated frameworks (default: all): {', '.join(FRAMEWORKS)}")
    p.add_argument("--family", type=csv_list, default=None,
                   help=f"frameworks of these families only: {', '.join(FAMILIES)}")
    p.add_argument("--variants", type=csv_list, default=None, help="only these variants (default: all)")
    p.add_argument("--dataset", "--datasets", dest="datasets", type=csv_list, default=None,
                   help="datasets: synthetic, diabetes, california (linear regression); mnist, fashion-mnist")
    p.add_argument("--modes", "--mode", dest="modes", type=csv_list, default=None,
                   help="linear-regression modes: full-batch, sgd, minibatch (default: all)")
    p.add_argument("--profile", default="full", choices=PROFILES,
                   help="smoke (tests), quick (minutes), full (default: all of MNIST)")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"), help="default cpu")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="only shard K of N: a deterministic, cost-balanced split of the selected cells")
    p.add_argument("--costs", default=None, metavar="RUN_DIR",
                   help="with --shard: balance on the cells' measured wall times in this earlier run")


def add_run_options(p) -> None:
    p.add_argument("--out", help="run dir (default runs/<date>-<time>)")
    p.add_argument("--resume", action="store_true", help="skip cells already in OUT/results.jsonl")
    p.add_argument("--timeout", type=number_type(float, 0, low_inclusive=False), default=1800.0,
                   help="seconds per cell process (default 1800)")
    p.add_argument("--threads", type=number_type(int, 1, _cores, describe=f"an integer from 1 to the "
                                                 f"{_cores()} cores this process may use"),
                   default=None, help="threads (and pinned cores) for every framework (default: all cores)")
    p.add_argument("--max-memory", type=number_type(float, 0, _memory_gb, low_inclusive=False), default=None,
                   metavar="GB", help="resident memory limit per cell process (default: half the machine's memory)")
    p.add_argument("--data-dir", help="folder with mnist/, fashion-mnist/, california-housing/ (env DLROSETTA_DATA)")
    p.add_argument("--init", default="native", choices=("native", "shared"),
                   help="native: each framework's initialiser; shared: the spec's seeded weights")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip ONNX export and parity")
    p.add_argument("--no-deploy", dest="deploy", action="store_false",
                   help="skip the deployment exports (torch.export .pt2, SavedModel, jax.export) and their load-back check")
    p.add_argument("--profile-ops", action="store_true",
                   help="trace a few steady-state steps with each framework's profiler into the cell's folder "
                        "(ops_trace/) and record the top operators by time in the row")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no live view, one line per finished cell (the default when stderr is not a terminal)")
    p.add_argument("--quiet", action="store_true", help="no per-cell lines: the header and the summary only")


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text) if text.isdigit() and int(text) >= 1 else default


# --------------------------------------------------------------------------------------------------
def select(args) -> dict:
    """Validate the selection flags; every bad name is a UsageError naming the choices."""
    tasks = args.tasks or list(TASKS)
    for t in tasks:
        if t not in TASKS:
            raise UsageError(f"unknown task {t!r}; choose from {', '.join(TASKS)}")
    frameworks = args.frameworks or list(FRAMEWORKS)
    for f in frameworks:
        if f not in FRAMEWORKS:
            raise UsageError(f"unknown framework {f!r}; choose from {', '.join(FRAMEWORKS)}")
    if args.family:
        for fam in args.family:
            if fam not in FAMILIES:
                raise UsageError(f"unknown family {fam!r}; choose from {', '.join(FAMILIES)}")
        frameworks = [f for f in frameworks if FRAMEWORKS[f].family in args.family]
    known_datasets = {d for t in tasks for d in TASKS[t].datasets}
    for d in args.datasets or []:
        if d not in known_datasets:
            raise UsageError(f"unknown dataset {d!r} for tasks {', '.join(tasks)}; "
                             f"choose from {', '.join(sorted(known_datasets)) or 'none (these tasks take no dataset)'}")
    known_modes = {m for t in tasks for m in TASKS[t].modes}
    for m in args.modes or []:
        if m not in known_modes:
            raise UsageError(f"unknown mode {m!r}; choose from {', '.join(sorted(known_modes)) or 'none'}")
    if args.variants:
        known = {v for t in tasks for f in frameworks for v in variants(t, f)}
        for v in args.variants:
            if v not in known:
                raise UsageError(f"unknown variant {v!r}; choose from {', '.join(sorted(known))}")
    device = args.device
    if device == "auto":
        from harness.matrix.registry import gpu_present

        device = "gpu" if gpu_present() else "cpu"
    return {"tasks": tasks, "frameworks": frameworks, "datasets": args.datasets, "modes": args.modes,
            "variants": args.variants, "device": device}


def parse_overrides(tasks, items, multi: bool) -> list[tuple[str, list]]:
    parsed = []
    for item in items:
        if "=" not in item:
            raise UsageError(f"expected KEY=VALUE{',VALUE' if multi else ''}, got {item!r}")
        key, _, values = item.partition("=")
        raw = csv_list(values) if multi else [values.strip()]
        if not raw:
            raise UsageError(f"no value given for {key!r}")
        typed, last = None, None
        for task in tasks:  # the first selected task that has the setting types and checks it
            try:
                typed = [coerce_override(task, key.strip(), v) for v in raw]
                break
            except SpecError as exc:
                last = exc
                if task_accepts(task, key.strip()):
                    break  # the task has the setting: the value itself is bad
        if typed is None:
            raise UsageError(str(last) if last else f"no task takes {key!r}")
        parsed.append((key.strip(), typed))
    return parsed


def precisions(values: list[str]) -> list[str]:
    bad = [v for v in values if v not in PRECISIONS]
    if bad or not values:
        raise UsageError(f"--precision: bad value {bad[0] if bad else ''!r}; choose from {', '.join(PRECISIONS)}")
    return list(dict.fromkeys(values))


def apply_params(cells):
    """Each cell keeps only the --set/--sweep settings its task has (x² has no epochs), once."""
    from dataclasses import replace

    seen, out = set(), []
    for c in cells:
        c = replace(c, params=tuple((k, v) for k, v in c.params if task_accepts(c.task, k)))
        if c.key not in seen:
            seen.add(c.key)
            out.append(c)
    return out


def cmd_list(args) -> int:
    from harness.matrix import shard

    sel = select(args)
    cells = enumerate_cells(sel["tasks"], sel["frameworks"], [sel["device"]], sel["datasets"], sel["modes"],
                            sel["variants"], profile=args.profile)
    cells, seconds = shard.select_shard(cells, args.shard, args.profile, costs_dir=args.costs)
    rows = []
    for c in cells:
        na = applicability(c.task, c.framework, c.variant, c.params)
        missing = missing_packages(c.framework)
        rows.append({"cell": c.key, "task": c.task, "framework": c.framework, "family": FRAMEWORKS[c.framework].family,
                     "variant": c.variant, "description": variants(c.task, c.framework).get(c.variant, ""),
                     "dataset": c.dataset, "mode": c.mode, "device": c.device,
                     "applicable": na is None, "not_applicable_reason": na,
                     "importable": not missing, "missing": list(missing)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    width = max((len(r["cell"]) for r in rows), default=10)
    for r in rows:
        state = ("n/a: " + r["not_applicable_reason"]) if not r["applicable"] else (
            "ready" if r["importable"] else "not installed: " + ", ".join(r["missing"]))
        print(f"{r['cell']:<{width}}  {state}")
    ready = sum(r["applicable"] and r["importable"] for r in rows)
    where = f" in shard {args.shard} (estimated {seconds / 60:.1f} min)" if args.shard else ""
    print(f"{len(rows)} cells{where}, {ready} runnable in this environment")
    return 0


class Terminated(BaseException):
    """SIGTERM: handled like Ctrl-C (the running cell's process group is killed, finished rows stay)."""


def plan_jobs(cells, repeat: int, seed: int, done: set) -> tuple[list, list[list[str]]]:
    """Every process of the run in order: round 0 runs each cell in full, rounds 1..N-1 time it again in
    fresh processes. With N > 1 every round is shuffled (seeded, recorded), so that drift and background
    load spread over all columns instead of hitting one. Cells that are not run (n/a, not installed) get
    one row only."""
    from harness.running.runner import Job, skip_reason

    rounds, jobs = [], []
    for r in range(repeat):
        order = [c for c in cells if r == 0 or skip_reason(c) is None]
        if repeat > 1:
            random.Random(seed * 1000 + r).shuffle(order)
        rounds.append([c.key for c in order])
        jobs += [Job(c, r, 0, {"round": r, "position": i, "seed": seed}) for i, c in enumerate(order)
                 if (c.key, r) not in done]
    return jobs, rounds


def cmd_run(args) -> int:
    from harness import executors
    from harness.running import runner
    from harness.running.progress import Progress

    sel = select(args)
    sweeps = parse_overrides(sel["tasks"], args.sweep, multi=True)
    fixed = parse_overrides(sel["tasks"], args.set, multi=False)
    grid = [[]]
    for key, values in sweeps:
        grid = [g + [(key, v)] for g in grid for v in values]
    params = [tuple(g + [(k, v[0]) for k, v in fixed]) for g in grid]
    # --precision is a matrix dimension of the MNIST tasks; fp32 keeps the plain cell key (the default run's)
    run_precisions = precisions(args.precision)
    params = [p + ((("precision", v),) if v != "fp32" else ()) for p in params for v in run_precisions]
    from harness.matrix import shard

    cells = apply_params(enumerate_cells(sel["tasks"], sel["frameworks"], [sel["device"]], sel["datasets"],
                                         sel["modes"], sel["variants"], params, profile=args.profile))
    cells, _ = shard.select_shard(cells, args.shard, args.profile, args.repeat, args.costs)
    if not cells:
        raise UsageError("the selection matches no cell" + (f" in shard {args.shard}" if args.shard else ""))
    threads = args.threads or _cores()
    out = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    results = out / "results.jsonl"
    if results.is_file() and not args.resume and runner.read_rows(results):
        raise UsageError(f"{results} already has results: pass --resume to continue it, or another --out")
    done = runner.completed_keys(results) if args.resume and results.is_file() else set()
    jobs, rounds = plan_jobs(cells, args.repeat, args.order_seed, done)
    if args.dry_run:
        for job in jobs:
            print(f"round {job.repeat}  {job.cell.key}" + ("  (timing only)" if job.repeat else ""))
        print(f"{len(jobs)} processes ({len(cells)} cells x {args.repeat} repeat(s), "
              f"{sum(len(r) for r in rounds) - len(jobs)} already done)")
        return 0
    check_data([j.cell for j in jobs], args.data_dir)  # before anything is written
    if args.executor == "ray" and importlib.util.find_spec("ray") is None:
        raise UsageError("--executor ray needs Ray: pip install 'dlrosetta[ray]'")
    tracker = open_tracking(args, out)
    prepare_out(out)
    env_info = environment.describe(threads, args.profile, sel["device"])
    env_info["settings"] = {"set": sorted(args.set), "sweep": sorted(args.sweep), "init": args.init}
    env_info["precision"] = ",".join(run_precisions)
    env_info["shard"] = args.shard
    env_info["run_id"] = _existing_run_id(out) or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    env_info = environment.write(out, env_info)
    _append_schedule(out, args, rounds)
    opts = runner.RunOptions(out=out.resolve(), profile=args.profile, timeout=args.timeout, threads=threads,
                             data_dir=args.data_dir, init=args.init, onnx=args.onnx, deploy=args.deploy,
                             run_id=env_info["run_id"],
                             max_memory_gb=args.max_memory, profile_ops=getattr(args, "profile_ops", False))
    progress = Progress(len(jobs), live=args.progress and sys.stderr.isatty(),
                        skipped=sum(len(r) for r in rounds) - len(jobs), quiet=args.quiet,
                        cost=lambda cell: shard.estimated_cost(cell, args.profile))
    progress.header(out, env_info)
    progress.plan([j.cell for j in jobs])
    if tracker is not None and hasattr(tracker, "start"):
        tracker.start(env_info)
    rows: list[dict] = []
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    executor = executors.get(args.executor)

    def on_row(row: dict) -> None:
        runner.append_row(results, row)
        rows.append(row)
        if tracker is not None:
            tracker.log(row)

    try:
        executor.run(jobs, opts, on_row, progress, address=args.ray_address)
        for attempt in range(1, args.rerun_disturbed + 1):
            again = disturbed_jobs(runner.read_rows(results), cells, attempt)
            if not again:
                break
            progress.extend(len(again), f"re-running {len(again)} disturbed or unstable process(es), attempt {attempt}")
            executor.run(again, opts, on_row, progress, address=args.ray_address)
    except (KeyboardInterrupt, Terminated) as exc:
        code = 143 if isinstance(exc, Terminated) else 130
        progress.interrupted(out, len(rows), len(jobs), resume_command(args, out),
                             "SIGTERM" if code == 143 else "Ctrl-C")
        return code
    except runner.OutputError as exc:
        print(f"dlrosetta: error: {exc.strerror}; {len(rows)} finished row(s) were written before it", file=sys.stderr)
        return 1
    finally:
        progress.close()
        signal.signal(signal.SIGTERM, previous)
        if tracker is not None:
            tracker.close()
    return progress.summary(rows, results)


def _raise_terminated(signum, frame):
    raise Terminated()


def disturbed_jobs(rows, cells, attempt: int) -> list:
    """Processes to run again: each selected (cell, repeat) whose rows hold no stable timing, only
    disturbed or unstable ones (`--rerun-disturbed`)."""
    from harness.running.runner import Job

    wanted = {c.key: c for c in cells}
    flags: dict[tuple, list[str]] = {}
    for r in rows:
        if not isinstance(r, dict) or r.get("cell") not in wanted or r.get("status") != "ok":
            continue
        flag = (r.get("stability") or {}).get("flag")
        flags.setdefault((r["cell"], r.get("repeat") or 0), []).append(flag)
    again = []
    for (key, repeat), seen in flags.items():
        if "stable" not in seen and any(f in ("disturbed", "unstable") for f in seen):
            again.append(Job(wanted[key], repeat, attempt, {"round": "rerun", "position": len(again),
                                                             "attempt": attempt}))
    return again


def resume_command(args, out: Path) -> str:
    """The exact command that resumes this run: the same arguments, with --out and --resume."""
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    if not args.out:
        argv += ["--out", str(out)]
    if "--resume" not in argv:
        argv.append("--resume")
    return "dlrosetta " + shlex.join(argv)


def prepare_out(out: Path) -> None:
    """Create the run dir and prove that results.jsonl can be written, or stop before any cell runs."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / "results.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.close(fd)
    except OSError as exc:
        raise UsageError(f"cannot write the run dir {out}: {exc.strerror or exc}") from None


def _append_schedule(out: Path, args, rounds) -> None:
    """schedule.jsonl: the order of every round of this invocation (one line per `dlrosetta run`)."""
    entry = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "repeat": args.repeat, "seed": args.order_seed,
             "shuffled": args.repeat > 1, "rounds": rounds}
    with open(out / "schedule.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")


def open_tracking(args, out: Path):
    """The tracking sinks (`--track`), checked before anything runs; None without --track."""
    if not args.track:
        return None
    try:
        from harness import tracking
    except ImportError:
        raise UsageError("tracking is not available in this checkout (no harness.tracking)") from None
    try:
        return tracking.open_sinks(args.track, out, {}, args.tracking_uri)
    except tracking.TrackingError as exc:
        raise UsageError(str(exc)) from None


def check_data(cells, data_dir) -> None:
    """Every dataset the cells will read is present and intact, or the run does not start (exit 2)."""
    from harness.matrix import data
    from harness.running.runner import skip_reason

    for dataset in dict.fromkeys(c.dataset for c in cells if c.dataset and skip_reason(c) is None):
        try:
            data.preflight(dataset, data_dir)
        except data.DataError as exc:
            raise UsageError(str(exc)) from None


def _existing_run_id(out: Path) -> str | None:
    try:
        return json.loads((out / "environment.json").read_text()).get("run_id")
    except (OSError, ValueError):
        return None


def cmd_parity(args) -> int:
    from harness.checks import parity

    args.threads = args.threads or _cores()

    return parity.main(args, select(args))


def cmd_merge(args) -> int:
    from harness.running import merge

    done = merge.merge(args.run_dirs, args.output, args.allow_mismatch)
    hosts = f" from {done['hosts']} host(s)" if done["hosts"] > 1 else ""
    print(f"merged {done['shards']} shards{hosts}: {done['rows']} rows -> {args.output}/results.jsonl")
    for note in done["mismatches"]:
        print(f"  kept despite --allow-mismatch: {note}")
    return 0


def cmd_history(args) -> int:
    try:
        from reports import history
    except ImportError as exc:
        raise UsageError(f"the history needs the 'report' extra (pip install 'dlrosetta[report]'): {exc}") from None
    try:
        done = history.build(args.run_dirs, args.output)
    except history.HistoryError as exc:
        raise UsageError(str(exc)) from None
    print(f"history: {len(done.points)} runs, {len(done.regressions)} regression(s), "
          f"{len(done.improvements)} improvement(s) -> {done.html} (+ {done.json.name})")
    for c in done.changes:
        size = f"x{c['ratio']:.2f}" if c["ratio"] else c["method"]
        print(f"  {c['kind']:<11} {c['cell']}: {size} ({c['from']} -> {c['to']}; "
              f"{'; '.join(c['changed']) or 'nothing recorded changed'})"
              + (f" [{c['stability']}]" if c.get("stability") else ""))
    for note in done.notes:
        print(f"  note: {note}")
    return 1 if args.fail_on_regression and done.regressions else 0


def cmd_report(args) -> int:
    for d in args.run_dirs:
        if not (Path(d) / "results.jsonl").exists():
            raise UsageError(f"{d} is not a run dir: no results.jsonl in it")
    if len(args.run_dirs) > 2:
        raise UsageError("report takes one run dir, or two to compare")
    try:
        from reports import render
    except ImportError as exc:
        raise UsageError(f"the report needs the 'report' extra (pip install 'dlrosetta[report]'): {exc}") from None
    _onnx_cross_check(args.run_dirs[-1])
    out = render.render(args.run_dirs, args.output)
    print(f"report: {out}")
    return 0


def cmd_guide(args) -> int:
    unknown = [t for t in args.tasks or [] if t not in TASKS]
    if unknown:
        raise UsageError(f"unknown task {unknown[0]!r}; choose from {', '.join(TASKS)}")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise UsageError(f"{args.output} exists and is not a folder")
    try:
        from reports import guide
    except ImportError as exc:
        raise UsageError(f"the guide needs the 'guide' extra (pip install 'dlrosetta[guide]'): {exc}") from None
    site = guide.build_site(args.output, args.tasks, args.repo_url, args.ref)
    tasks = len(site.pages) - 1
    print(f"guide: {site.out / 'index.html'} ({tasks} task page{'s' * (tasks != 1)}, {len(site.notebooks)} notebooks) "
          f"in {site.seconds:.1f} s")
    for problem in site.problems:
        print(f"  crosswalk: {problem}", file=sys.stderr)
    return 0


def _onnx_cross_check(run_dir) -> None:
    """Every column's ONNX file of a task on the same inputs (needs onnxruntime; skipped without it)."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        print("onnx cross-check skipped: onnxruntime is not installed here", file=sys.stderr)
        return
    from harness.checks import onnx_cross

    try:
        path = onnx_cross.write(run_dir)
    except Exception as exc:  # noqa: BLE001 - the report is still worth having
        print(f"onnx cross-check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    print(f"onnx cross-check: {path}")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        return {"list": cmd_list, "run": cmd_run, "parity": cmd_parity, "merge": cmd_merge,
                "report": cmd_report, "history": cmd_history, "guide": cmd_guide}[args.command](args)
    except (UsageError, SpecError) as exc:
        print(f"dlrosetta: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
