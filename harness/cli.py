"""The `dlrosetta` command: list, run, parity, report.

Exit codes: 0 every cell ok, 1 some cell failed (after a summary), 2 usage error (one line).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

from harness import environment
from harness.registry import FAMILIES, FRAMEWORKS, applicability, enumerate_cells, missing_packages, variants
from harness.tasks import PROFILES, TASKS, SpecError, coerce_override


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, instead of argparse's usage dump
        raise UsageError(message)


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


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

    par = sub.add_parser("parity", help="train every column from the same weights and compare loss curves")
    add_selection(par, default_tasks="mnist_mlp,mnist_cnn,linear_regression")
    add_run_options(par)
    par.add_argument("--steps", type=int, default=100, help="training steps per column (default 100)")

    rep = sub.add_parser("report", help="render a run dir into one self-contained HTML file")
    rep.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                     help="a run dir; with two, the second is compared against the first")
    rep.add_argument("-o", "--output", help="HTML file to write (default RUN_DIR/report.html)")
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


def add_run_options(p) -> None:
    p.add_argument("--out", help="run dir (default runs/<date>-<time>)")
    p.add_argument("--resume", action="store_true", help="skip cells already in OUT/results.jsonl")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per cell (default 1800)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads for every framework (default: all cores)")
    p.add_argument("--data-dir", help="folder with mnist/, fashion-mnist/, california-housing/ (env DLROSETTA_DATA)")
    p.add_argument("--init", default="native", choices=("native", "shared"),
                   help="native: each framework's initialiser; shared: the spec's seeded weights")
    p.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip ONNX export and parity")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="one line per cell only")


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
        from harness.registry import gpu_present

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
        typed = None
        for task in tasks:
            if TASKS[task].kind == "x2":
                continue
            try:
                typed = [coerce_override(task, key.strip(), v) for v in raw]
                break
            except SpecError as exc:
                last = exc
        if typed is None:
            raise UsageError(str(last) if tasks else f"no task takes {key!r}")
        parsed.append((key.strip(), typed))
    return parsed


def cmd_list(args) -> int:
    sel = select(args)
    cells = enumerate_cells(sel["tasks"], sel["frameworks"], [sel["device"]], sel["datasets"], sel["modes"],
                            sel["variants"], profile=args.profile)
    rows = []
    for c in cells:
        na = applicability(c.task, c.framework)
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
    print(f"{len(rows)} cells, {ready} runnable in this environment")
    return 0


def cmd_run(args) -> int:
    from harness import runner
    from harness.progress import Progress

    sel = select(args)
    sweeps = parse_overrides(sel["tasks"], args.sweep, multi=True)
    fixed = parse_overrides(sel["tasks"], args.set, multi=False)
    grid = [[]]
    for key, values in sweeps:
        grid = [g + [(key, v)] for g in grid for v in values]
    params = [tuple(g + [(k, v[0]) for k, v in fixed]) for g in grid]
    cells = enumerate_cells(sel["tasks"], sel["frameworks"], [sel["device"]], sel["datasets"], sel["modes"],
                            sel["variants"], params, profile=args.profile)
    if not cells:
        raise UsageError("the selection matches no cell")
    out = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    results = out / "results.jsonl"
    if results.exists() and not args.resume and runner.read_rows(results):
        raise UsageError(f"{results} already has results: pass --resume to continue it, or another --out")
    done = runner.completed_keys(results) if args.resume else set()
    todo = [c for c in cells if c.key not in done]
    check_data(todo, args.data_dir)  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    env_info = environment.describe(args.threads, args.profile, sel["device"])
    env_info["run_id"] = _existing_run_id(out) or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    env_info = environment.write(out, env_info)
    opts = runner.RunOptions(out=out, profile=args.profile, timeout=args.timeout, threads=args.threads,
                             data_dir=args.data_dir, init=args.init, onnx=args.onnx, run_id=env_info["run_id"])
    progress = Progress(len(todo), live=args.progress and sys.stderr.isatty(), skipped=len(cells) - len(todo))
    progress.header(out, env_info)
    rows = []
    try:
        for cell in todo:
            progress.begin(cell)
            row = runner.run_cell(cell, opts, on_progress=progress.update)
            runner.append_row(results, row)
            progress.end(cell, row)
            rows.append(row)
    except KeyboardInterrupt:
        progress.interrupted(out)
        return 130
    return progress.summary(rows, results)


def check_data(cells, data_dir) -> None:
    """Every dataset the cells will read is present and intact, or the run does not start (exit 2)."""
    from harness import data
    from harness.runner import skip_reason

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
    from harness import parity

    return parity.main(args, select(args))


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


def _onnx_cross_check(run_dir) -> None:
    """Every column's ONNX file of a task on the same inputs (needs onnxruntime; skipped without it)."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        print("onnx cross-check skipped: onnxruntime is not installed here", file=sys.stderr)
        return
    from harness import onnx_cross

    try:
        path = onnx_cross.write(run_dir)
    except Exception as exc:  # noqa: BLE001 - the report is still worth having
        print(f"onnx cross-check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    print(f"onnx cross-check: {path}")


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"list": cmd_list, "run": cmd_run, "parity": cmd_parity, "report": cmd_report}[args.command](args)
    except (UsageError, SpecError) as exc:
        print(f"dlrosetta: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
