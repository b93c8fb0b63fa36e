"""One section per task: charts (timing, memory, inference, curves, sweeps) and the task's table."""
from __future__ import annotations

import statistics

from harness.matrix.registry import is_tuned, variants
from harness.matrix.tasks import TASKS
from reports import charts
from reports.data import Run, get, host_label, machines, number, params_text, series_label, task_title
from reports.format import Col, Table, fmt_num, fmt_value, ms, table

NAV_TITLES = {"x2_descent": "x²", "linear_regression": "Linear regression", "tanh_regression": "Tanh regression",
              "mnist_mlp": "MNIST MLP", "mnist_cnn": "MNIST CNN"}


# --------------------------------------------------------------------------------------------------
# per task
# --------------------------------------------------------------------------------------------------
def ok_rows(rows, task, **match):
    out = []
    for r in rows:
        if r.get("task") != task or r.get("status") != "ok":
            continue
        if any((r.get(k) or None) != v for k, v in match.items()):
            continue
        out.append(r)
    return out


def timing_charts(rows: list[dict], label=series_label, what: str = "") -> list:
    suffix = f" — {what}" if what else ""
    repeated = any((get(r, "processes.n") or 0) > 1 for r in rows)
    out = [
        charts.bars(rows, lambda r: ms(get(r, "timing.step_s.median")), f"Steady-state step time{suffix}", "ms",
                    err=lambda r: ms(get(r, "timing.step_s.iqr")), label=label, span=process_span,
                    note="median over steps, each epoch's first step left out; whisker: "
                         + ("min–max over the fresh processes (±IQR/2 where only one)" if repeated else "±IQR/2")),
        charts.bars(rows, lambda r: ms(get(r, "timing.first_step_s")),
                    f"First step, including compile / tracing{suffix}", "ms", label=label,
                    note="from the start of train() to the first step's loss"),
    ]
    return [c for c in out if c]


def process_span(r, low="min", high="max"):
    """(lowest, highest) process median of a cell in ms — or another pair of its `processes` block, such
    as the CI — where more than one process timed it."""
    if (get(r, "processes.n") or 0) < 2:
        return None, None
    return ms(number(get(r, f"processes.{low}"))), ms(number(get(r, f"processes.{high}")))


def epoch_chart(rows, label=series_label):
    n = max((len(get(r, "timing.epoch_s", [])) for r in rows), default=0)
    if n == 0:
        return None
    if n == 1:
        return charts.bars(rows, lambda r: (get(r, "timing.epoch_s") or [None])[0], "Epoch time", "s", label=label,
                           note="wall time of the one epoch, evaluation excluded; it carries the compile")
    metrics = [(f"epoch {i + 1}", (lambda r, i=i: (get(r, "timing.epoch_s", []) + [None] * n)[i])) for i in range(n)]
    return charts.grouped_bars(rows, metrics, "Epoch time", "s", label=label,
                               note="wall time per epoch, evaluation excluded; epoch 1 carries the compile")


def memory_chart(rows, label=series_label, what=""):
    return charts.grouped_bars(rows, [("peak RSS", lambda r: get(r, "memory.peak_rss_mb")),
                                      ("after import", lambda r: get(r, "memory.import_rss_mb")),
                                      ("device peak", lambda r: get(r, "memory.device_peak_mb"))],
                               "Memory" + (f" — {what}" if what else ""), "MB", label=label,
                               note="peak RSS of the cell's process (os.wait4); RSS right after importing the framework")


def inference_charts(rows, label=series_label):
    out = []
    for batch in ("batch_1", "batch_256"):
        c = charts.grouped_bars(rows, [("native", lambda r, b=batch: get(r, f"timing.infer_ms.{b}.median")),
                                       ("onnxruntime", lambda r, b=batch: get(r, f"onnx.ort_infer_ms.{b}.median")),
                                       ("onnxruntime int8",
                                        lambda r, b=batch: get(r, f"onnx.quantized.ort_infer_ms.{b}.median"))],
                                f"Inference latency, {batch.replace('_', ' ')}", "ms (log scale)", label=label, log=True,
                                note="median of repeated predict() calls vs the exported model in onnxruntime (CPU)")
        if c:
            out.append(c)
    return out


def curve_charts(rows, label=series_label):
    out = [
        charts.curves(rows, lambda r: get(r, "metrics.train_loss_curve"), "Training loss per epoch", "loss",
                      label=label, note="mean of the epoch's step losses"),
        charts.curves(rows, lambda r: get(r, "metrics.test_accuracy_curve"), "Test accuracy per epoch",
                      "accuracy (%)", label=label, percent=True, note="evaluated by the harness after each epoch"),
    ]
    return [c for c in out if c]


def sweep_charts(all_rows: list[dict], task: str) -> list:
    swept = [r for r in all_rows if r.get("task") == task and r.get("status") == "ok" and r.get("params")]
    keys = sorted({k for r in swept for k in r["params"]} - {"precision"})  # precision: its own section
    out = []
    for key in keys:
        series: dict[str, list] = {}
        acc: dict[str, list] = {}
        members = [r for r in swept if key in r["params"]]
        bases = {(r.get("framework"), r.get("variant"), r.get("dataset"), r.get("mode"))
                 for r in members}
        base_rows = [r for r in all_rows if r.get("task") == task and r.get("status") == "ok" and not r.get("params")
                     and (r.get("framework"), r.get("variant"), r.get("dataset"), r.get("mode")) in bases]
        for r in members + base_rows:
            x = number(r["params"][key] if r.get("params") else get(r, f"spec.{key}"))
            others = " ".join(f"{k}={v}" for k, v in sorted((r.get("params") or {}).items()) if k != key)
            name = series_label(r) + (f" {others}" if others else "")
            step = number(get(r, "timing.step_s.median"))
            batch = number(r["params"].get("batch_size") if r.get("params") else None) or number(get(r, "spec.batch_size"))
            through = (batch or 1) / step if step else None
            series.setdefault(name, []).append((x, through, r))
            quality = get(r, "metrics.test_accuracy")
            quality = 100 * quality if quality is not None else get(r, "metrics.test_mse")
            acc.setdefault(name, []).append((x, number(quality), r))
        unit = "samples/s" if any(number(get(r, "spec.batch_size")) for r in members) else "steps/s"
        log_x = key in ("batch_size", "lr", "n")
        out.append(charts.sweep(series, f"Training throughput vs {key}", key, unit, log_x=log_x,
                                note="steady-state: batch size / median step time"))
        is_acc = any(get(r, "metrics.test_accuracy") is not None for r in members)
        out.append(charts.sweep(acc, f"{'Test accuracy' if is_acc else 'Test MSE'} vs {key}", key,
                                "accuracy (%)" if is_acc else "MSE", log_x=log_x))
    return [c for c in out if c]


MNIST_COLS = [
    Col("framework", "framework"), Col("variant", "variant"), Col("dataset", "dataset"), Col("params", "sweep"),
    Col("status", "status", "status"), Col("test_accuracy", "accuracy", "pct2"),
    Col("epochs", "epochs", "int", "epochs trained; * stopped at the target"),
    Col("test_loss", "test loss", "num"), Col("param_count", "params", "int"),
    Col("first_step_s", "first step (s)", "s"), Col("step_ms", "step (ms)", "ms", "median, steady state"),
    Col("step_iqr_ms", "step IQR (ms)", "ms", "within the process (of repeat 0 where there are several)"),
    Col("n_processes", "processes", "int", "fresh processes timed (--repeat); step (ms) is the median over them"),
    Col("step_range_ms", "step min–max (ms)", "text", "between processes: the lowest and highest process median"),
    Col("step_ci_ms", "step 95 % CI (ms)", "text", "bootstrap interval of the median over processes"),
    Col("vs_fastest", "× fastest", "ratio",
        "step time over the fastest column's (primary variants, same dataset, same machine)"),
    Col("gflops", "GFLOP/s", "g", "matmul and conv FLOPs of a training step / median step time"),
    Col("roofline_pct", "% roofline", "pct", "GFLOP/s over this run's measured sgemm throughput (environment.json)"),
    Col("epoch_s", "mean epoch (s)", "s"),
    Col("train_s", "train (s)", "s"), Col("peak_rss_mb", "peak RSS (MB)", "mb"),
    Col("import_rss_mb", "import RSS (MB)", "mb"), Col("infer_1_ms", "infer b1 (ms)", "ms"),
    Col("infer_256_ms", "infer b256 (ms)", "ms"), Col("time_to_target_s", "time to target (s)", "s"),
    Col("save_load", "save/load |Δ|", "sci"), Col("error", "error", "detail"),
]


def epochs_text(r):
    """Epochs trained, starred where training stopped at the target (stop_at_target)."""
    n = get(r, "metrics.epochs_trained")
    if n is None:
        n = len(get(r, "timing.epoch_s", []) or []) or None
    return None if n is None else (f"{n}*" if get(r, "metrics.stopped_at_target") else n)


def gflops(r):
    step, flops = number(get(r, "timing.step_s.median")), number(get(r, "metrics.train_flops_per_step"))
    return flops / step / 1e9 if step and flops else None


def primary_timed(rows) -> list[dict]:
    """The rows that compare columns: ok, timed, each column's own idiom (not a secondary variant) at
    the spec's own settings (not a sweep cell), timed on a quiet machine (stability not disturbed/unstable)."""
    return [r for r in rows if r.get("status") == "ok" and number(get(r, "timing.step_s.median"))
            and not r.get("params") and not r.get("secondary")
            and (r.get("stability") or {}).get("flag") in (None, "stable")]  # disturbed times never rank


def fastest_steps(rows) -> dict:
    """(dataset, machine) -> the fastest median step among the primary rows. Rows timed on different
    machines (merged shards) are never ranked against each other."""
    out = {}
    for r in primary_timed(rows):
        step, key = number(get(r, "timing.step_s.median")), (r.get("dataset"), host_label(r))
        out[key] = min(out.get(key, step), step)
    return out


def process_spread(r) -> dict:
    """The between-process figures of a cell (reports.data.with_processes): n, min-max and 95 % CI in ms."""
    def text(lo, hi):
        return f"{fmt_num(lo)}–{fmt_num(hi)}" if lo is not None and hi is not None else None

    return {"n_processes": get(r, "processes.n") or None, "step_range_ms": text(*process_span(r)),
            "step_ci_ms": text(*process_span(r, "ci_low", "ci_high"))}


def mnist_table_rows(rows, roofline=None):
    out = []
    fastest = fastest_steps(rows)
    for r in rows:
        step, rate = number(get(r, "timing.step_s.median")), gflops(r)
        best = fastest.get((r.get("dataset"), host_label(r))) if not r.get("params") else None
        epochs = [number(e) for e in get(r, "timing.epoch_s", []) if number(e) is not None]
        out.append({"framework": r.get("framework"), "variant": r.get("variant"), "dataset": r.get("dataset"),
                    "params": params_text(r), "status": r.get("status"),
                    "test_accuracy": get(r, "metrics.test_accuracy"), "epochs": epochs_text(r),
                    "test_loss": get(r, "metrics.test_loss"),
                    "param_count": get(r, "metrics.param_count"), "first_step_s": get(r, "timing.first_step_s"),
                    "step_ms": ms(get(r, "timing.step_s.median")), "step_iqr_ms": ms(get(r, "timing.step_s.iqr")),
                    **process_spread(r), "machine": host_label(r) or None,
                    "vs_fastest": step / best if step and best else None, "gflops": rate,
                    "roofline_pct": rate / roofline if rate and roofline else None,
                    "epoch_s": statistics.fmean(epochs) if epochs else None, "train_s": get(r, "timing.train_s"),
                    "peak_rss_mb": get(r, "memory.peak_rss_mb"), "import_rss_mb": get(r, "memory.import_rss_mb"),
                    "infer_1_ms": get(r, "timing.infer_ms.batch_1.median"),
                    "infer_256_ms": get(r, "timing.infer_ms.batch_256.median"),
                    "time_to_target_s": get(r, "metrics.time_to_target_s"),
                    "save_load": get(r, "metrics.save_load.max_abs_diff"), "error": r.get("error")})
    return out


IDIOM_COLS = [
    Col("framework", "framework"), Col("dataset", "dataset"), Col("primary", "primary variant"),
    Col("primary_ms", "primary step (ms)", "ms"),
    Col("primary_vs_fastest", "× fastest primary", "ratio", "over the fastest primary variant's step (same dataset, machine)"),
    Col("best", "best variant"), Col("best_ms", "best step (ms)", "ms"),
    Col("best_vs_fastest", "× fastest best", "ratio", "over the fastest framework's best variant"),
    Col("idiom_cost", "idiom cost", "ratio", "primary step / best variant's step: what the idiomatic code costs"),
]


def idiom_costs(rows, task) -> list[dict]:
    """Per framework (and dataset, machine): its primary variant (the file's first, the idiom) against the
    fastest of its variants, each ranked against the other frameworks' — "what the idiom costs" and "how fast
    the framework can be made". Rows timed on a busy machine, sweep cells and other precisions stay out."""
    timed = [r for r in rows if r.get("task") == task and r.get("status") == "ok" and not r.get("params")
             and number(get(r, "timing.step_s.median")) and (r.get("stability") or {}).get("flag") in (None, "stable")]
    groups: dict[tuple, list] = {}
    for r in timed:
        groups.setdefault((r.get("dataset"), host_label(r), r.get("framework")), []).append(r)

    def step(r):
        return number(get(r, "timing.step_s.median"))

    out = []
    for (dataset, host, fw), members in groups.items():
        first = next(iter(variants(task, fw)), None)  # the file's first variant: the idiom
        primary = next((r for r in members if r.get("variant") == first), None)
        if primary is None:
            continue
        best = min(members, key=step)
        out.append({"framework": fw, "dataset": dataset, "machine": host, "primary": primary.get("variant"),
                    "primary_ms": ms(step(primary)), "best": best.get("variant"), "best_ms": ms(step(best)),
                    "idiom_cost": step(primary) / step(best), "best_row": best})
    for kind in ("primary", "best"):
        fastest = {}
        for c in out:
            key = (c["dataset"], c["machine"])
            fastest[key] = min(fastest.get(key, c[f"{kind}_ms"]), c[f"{kind}_ms"])
        for c in out:
            c[f"{kind}_vs_fastest"] = c[f"{kind}_ms"] / fastest[(c["dataset"], c["machine"])]
    return out


def best_note(costs) -> str:
    """The "best of each framework" counterpart of the speed note: the fastest best variant, those over 2x it."""
    if len({c["framework"] for c in costs}) < 2:
        return ""
    top = min(costs, key=lambda c: c["best_ms"])
    slow = [f"{c['framework']}/{c['best']} ×{c['best_vs_fastest']:.1f}" for c in costs if c["best_vs_fastest"] > 2]
    return (f"Best variant of each framework: fastest {top['framework']}/{top['best']}, "
            f"{fmt_value(top['best_ms'], 'ms')} ms; " + ("over 2× it: " + ", ".join(slow) + "." if slow
                                                          else "every framework's best within 2× of it."))


def speed_note(rows, roofline) -> str:
    """The fastest column's throughput against the roofline, and the columns over 2x its step time; per
    machine when the rows come from several (merged shards), never ranked across them."""
    hosts = machines(primary_timed(rows))
    if len(hosts) > 1:
        return " ".join(f"On {h}: {one_machine_note([r for r in rows if host_label(r) == h], roofline)}"
                        for h in hosts) + " Timings of different machines are not ranked against each other."
    return one_machine_note(rows, roofline)


def one_machine_note(rows, roofline) -> str:
    primary = primary_timed(rows)
    if not primary:
        return ""
    best = min(primary, key=lambda r: get(r, "timing.step_s.median"))
    step, rate = get(best, "timing.step_s.median"), gflops(best)
    text = f"Fastest step: {series_label(best)}, {fmt_value(ms(step), 'ms')} ms"
    if rate:
        text += f" = {rate:.0f} GFLOP/s"
        if roofline:
            text += f", {100 * rate / roofline:.0f} % of this run's sgemm roofline ({roofline:.0f} GFLOP/s)"
    slow = [f"{series_label(r)} ×{get(r, 'timing.step_s.median') / step:.1f}" for r in primary
            if get(r, "timing.step_s.median") > 2 * step]
    return text + (". Over 2× its step time: " + ", ".join(slow) + "." if slow else
                   ". Every column within 2× of it.")


def mnist_section(run: Run, task: str) -> dict:
    roofline = number(get(run.env, "roofline.sgemm_gflops"))
    all_rows = [r for r in run.rows if r.get("task") == task]
    datasets = list(dict.fromkeys(r.get("dataset") for r in all_rows if r.get("status") == "ok"))
    groups, all_costs = [], []
    for ds in datasets:
        rows = [r for r in ok_rows(run.rows, task, dataset=ds) if not r.get("params")]
        if not rows:
            continue
        label = series_label if len(machines(rows)) <= 1 else (lambda r: f"{series_label(r)} · {host_label(r)}")
        costs = idiom_costs(rows, task)
        best_rows = [c.pop("best_row") for c in costs]
        best_chart = charts.bars(best_rows, lambda r: ms(get(r, "timing.step_s.median")),
                                 "Steady-state step time — best variant of each framework", "ms", label=label,
                                 note="each framework's fastest variant (idiom cost: see the table below)") \
            if len(best_rows) > 1 and any(c["best"] != c["primary"] for c in costs) else None
        timing = timing_charts(rows, label)  # step time of every row, then the first step
        chart_list = timing[:1] + [best_chart] + timing[1:] \
            + [epoch_chart(rows, label), memory_chart(rows, label=label)] \
            + inference_charts(rows, label) + curve_charts(rows, label)
        targets = {get(r, "metrics.target_accuracy") for r in rows} - {None}
        ttt = charts.bars(rows, lambda r: get(r, "metrics.time_to_target_s"),
                          f"Time to {fmt_value(max(targets), 'pct')} test accuracy" if targets else "Time to target",
                          "s", label=label,
                          note="training time (evaluation excluded) until the first epoch-end evaluation "
                                    "at or above the target")
        if ttt:
            chart_list.append(ttt)
        if not targets:
            target_note = "This profile sets no accuracy target, so there is no time-to-target."
        elif not ttt:
            target_note = f"No column reached the {fmt_value(max(targets), 'pct')} target in this run."
        else:
            missed = [series_label(r) for r in rows  # rows with a target (not the short secondary runs)
                      if get(r, "metrics.target_accuracy") is not None and get(r, "metrics.time_to_target_s") is None]
            target_note = ("Did not reach the target: " + ", ".join(missed)) if missed else ""
        if targets and any(get(r, "spec.stop_at_target") for r in rows):
            most = int(max(number(get(r, "spec.epochs")) or 0 for r in rows))
            target_note = (f"Trained to target: each column stops after the first epoch whose test accuracy "
                           f"reaches {fmt_value(max(targets), 'pct')} (at most {most} epochs), so final "
                           f"accuracies sit just above the target; compare the time to target. "
                           + ("Secondary variants run a short fixed schedule for their step time and "
                              "have no target" + ("; tuned variants train to target like the primaries"
                                                  if any(is_tuned(r.get("variant")) for r in rows) else "") + ". "
                              if any(r.get("secondary") and get(r, "metrics.target_accuracy") is None
                                     for r in rows) else "")
                           + target_note).strip()
        speed = speed_note(rows, roofline)
        groups.append({"name": ds, "charts": [c for c in chart_list if c],
                       "note": " ".join(n for n in (target_note, speed, best_note(costs) if best_chart else "") if n)})
        all_costs += costs
    sweeps = sweep_charts(run.rows, task)
    cols = MNIST_COLS + ([Col("machine", "machine", "text", "where the row was timed (merged shards)")]
                         if len(machines(all_rows)) > 1 else [])
    tbl = table(cols, mnist_table_rows([r for r in all_rows if r.get("status") not in ("not_applicable",)],
                                       roofline), f"{task}.csv")
    idiom = table(IDIOM_COLS, all_costs, f"{task}-idiom-cost.csv",
                  title="Idiom cost: each framework's primary against its best variant",
                  note="primary: the file's first variant, the framework's idiom; best: its fastest variant in this "
                       "run (the primary itself where none is faster). Quiet-machine rows only.") \
        if any(c["best"] != c["primary"] for c in all_costs) else None
    return {"groups": groups, "sweeps": sweeps, "table": tbl, "extra_tables": [idiom] if idiom else []}


LINREG_COLS = [
    Col("framework", "framework"), Col("variant", "variant"), Col("dataset", "dataset"), Col("mode", "mode"),
    Col("params", "settings"), Col("status", "status", "status"), Col("test_mse", "test MSE", "num"),
    Col("closed_form", "closed-form MSE", "num"), Col("gap", "gap to closed form", "pct2"),
    Col("param_error", "max |param error|", "sci", "synthetic data: learned vs true A, b"),
    Col("step_ms", "step (ms)", "ms"), Col("train_s", "train (s)", "s"), Col("peak_rss_mb", "peak RSS (MB)", "mb"),
    Col("error", "error", "detail"),
]


def linreg_section(run: Run, task: str) -> dict:
    all_rows = [r for r in run.rows if r.get("task") == task and r.get("status") != "not_applicable"]
    trows = [{"framework": r.get("framework"), "variant": r.get("variant"), "dataset": r.get("dataset"),
              "mode": r.get("mode"), "params": params_text(r), "status": r.get("status"),
              "test_mse": get(r, "metrics.test_mse"), "closed_form": get(r, "metrics.closed_form_test_mse"),
              "gap": get(r, "metrics.gap_to_closed_form"), "param_error": get(r, "metrics.param_error"),
              "step_ms": ms(get(r, "timing.step_s.median")), "train_s": get(r, "timing.train_s"),
              "peak_rss_mb": get(r, "memory.peak_rss_mb"), "error": r.get("error")} for r in all_rows]
    ok = [r for r in all_rows if r.get("status") == "ok" and not r.get("params")]
    datasets = list(dict.fromkeys(r.get("dataset") for r in ok))
    modes = list(dict.fromkeys(r.get("mode") for r in ok))
    chart_list = []
    for ds in datasets:
        fb = [r for r in ok if r.get("dataset") == ds and r.get("mode") == "full-batch"]
        c = charts.curves(fb, lambda r: get(r, "metrics.loss_curve"), f"Full-batch training loss — {ds}",
                          "MSE (log scale)", log=True, note="one gradient step per epoch: every framework "
                          "should draw the same curve", wide=False)
        if c:
            chart_list.append(c)
    first = "synthetic" if "synthetic" in datasets else (datasets[0] if datasets else None)
    for mode in modes:
        rows = [r for r in ok if r.get("dataset") == first and r.get("mode") == mode]
        steady = charts.bars(rows, lambda r: ms(get(r, "timing.step_s.median")),
                             f"Steady-state step time — {first}, {mode}", "ms",
                             err=lambda r: ms(get(r, "timing.step_s.iqr")),
                             note="median over steps, each epoch's first step left out; whisker: ±IQR/2")
        chart_list.append(steady or charts.bars(
            rows, lambda r: get(r, "timing.train_s"), f"Training time — {first}, {mode}", "s",
            note="one step per epoch, so no steady-state step time: the whole train() call"))
    mem_rows = [r for r in ok if r.get("dataset") == first and r.get("mode") == (modes[0] if modes else None)]
    m = memory_chart(mem_rows, what=f"{first}, {modes[0]}" if modes else "")
    if m:
        chart_list.append(m)
    agreement = linreg_agreement(ok, datasets)
    return {"groups": [{"name": "", "charts": chart_list, "note": ""}], "sweeps": sweep_charts(run.rows, task),
            "table": table(LINREG_COLS, trows, f"{task}.csv"), "agreement": agreement}


TANH_VS_LINEAR_COLS = [
    Col("framework", "framework"), Col("variant", "variant"), Col("dataset", "dataset"), Col("mode", "mode"),
    Col("test_mse", "tanh test MSE", "num"), Col("closed_form", "least-squares line, test MSE", "num",
                                                   "the best linear model on the same split (numpy lstsq)"),
    Col("ratio", "tanh / linear", "num"),
    Col("linreg_test_mse", "linear_regression column, test MSE", "num",
        "the same framework's linear_regression cell on this dataset (full-batch, its primary variant), if in the run"),
]
TANH_PARAM_COLS = [
    Col("framework", "framework"), Col("dataset", "dataset"), Col("modules", "modules: parameters", "int"),
    Col("sequential", "sequential: parameters", "int"), Col("expected", "spec: d·H + 2H + 1", "int"),
    Col("equal", "all equal"),
]


def tanh_section(run: Run, task: str) -> dict:
    """Linear regression's section (train-loss curves, step times, cells), plus the test-loss curves, the
    test MSE against a linear model's on the same split, and each variant's parameter count."""
    body = linreg_section(run, task)
    ok = [r for r in run.rows if r.get("task") == task and r.get("status") == "ok" and not r.get("params")]
    datasets = list(dict.fromkeys(r.get("dataset") for r in ok))
    tests = [charts.curves([r for r in ok if r.get("dataset") == ds and r.get("mode") == mode],
                           lambda r: get(r, "metrics.test_loss_curve"), f"Test loss — {ds}, {mode}",
                           "MSE (log scale)", log=True, wide=False,
                           note="the test split's MSE after every epoch (the harness's evaluation, timed apart)")
             for ds in datasets for mode in ("full-batch", "adam-full-batch")]
    body["groups"][0]["charts"][len(datasets):len(datasets)] = [c for c in tests if c]
    linear = {(r.get("framework"), r.get("dataset")): get(r, "metrics.test_mse") for r in run.rows
              if r.get("task") == "linear_regression" and r.get("status") == "ok" and r.get("mode") == "full-batch"
              and not r.get("params") and not r.get("secondary")}
    vs = []
    for r in ok:
        mse, cf = number(get(r, "metrics.test_mse")), number(get(r, "metrics.closed_form_test_mse"))
        vs.append({"framework": r.get("framework"), "variant": r.get("variant"), "dataset": r.get("dataset"),
                   "mode": r.get("mode"), "test_mse": mse, "closed_form": cf,
                   "ratio": mse / cf if mse is not None and cf else None,
                   "linreg_test_mse": linear.get((r.get("framework"), r.get("dataset")))})
    counts: dict = {}
    for r in ok:
        entry = counts.setdefault((r.get("framework"), r.get("dataset")), {"seen": set()})
        entry[r.get("variant")] = get(r, "metrics.param_count")
        entry["seen"].add(get(r, "metrics.param_count"))
        entry["expected"] = get(r, "metrics.param_count_expected")
    params = [{"framework": fw, "dataset": ds, "modules": e.get("modules"), "sequential": e.get("sequential"),
               "expected": e["expected"], "equal": "yes" if e["seen"] == {e["expected"]} else "NO"}
              for (fw, ds), e in counts.items()]
    body["extra_tables"] = [t for t in (
        table(TANH_VS_LINEAR_COLS, vs, f"{task}-vs-linear.csv", title="Test MSE against a linear model",
              note="below 1: the tanh units fit what no straight line can (sin(3x)); California's features "
                   "are nearly linear in the target, so the gain is smaller"),
        table(TANH_PARAM_COLS, params, f"{task}-params.csv", title="Parameter count of each variant",
              note="count_params of the built model, each framework's own way (parameters(), "
                   "trainable_variables, count_params, the pytree's leaves), against the spec")) if t]
    return body


def linreg_agreement(ok: list[dict], datasets: list) -> Table | None:
    """Full-batch loss curves across frameworks: per column, the largest relative deviation (over
    epochs) from the median of all columns at that epoch."""
    per_series: dict[str, dict] = {}
    epochs = {}
    for ds in datasets:
        rows = [r for r in ok if r.get("dataset") == ds and r.get("mode") == "full-batch"]
        curves = {series_label(r): [number(v) for v in get(r, "metrics.loss_curve", [])] for r in rows}
        curves = {k: v for k, v in curves.items() if v and all(x is not None for x in v)}
        if not curves:
            continue
        n = min(len(v) for v in curves.values())
        epochs[ds] = n
        medians = [statistics.median(v[e] for v in curves.values()) for e in range(n)]
        for name, curve in curves.items():
            dev = max(abs(curve[e] - medians[e]) / abs(medians[e]) if medians[e] else abs(curve[e])
                      for e in range(n))
            per_series.setdefault(name, {"series": name})[ds] = dev
    if not per_series:
        return None
    cols = [Col("series", "framework / variant")] + [
        Col(ds, f"{ds} ({epochs[ds]} epochs, {sum(ds in v for v in per_series.values())} columns)", "sci")
        for ds in epochs]
    return table(cols, list(per_series.values()), "linreg_curve_agreement.csv",
                 note="max over epochs of |loss − median of all columns| / median; float32 arithmetic "
                      "differences stay near 1e-6, a different algorithm shows up as 1e-2 or more")


X2_COLS = [Col("framework", "framework"), Col("variant", "variant"), Col("status", "status", "status"),
           Col("x_final", "x₂₀", "num"), Col("exact", "exact 10·0.8²⁰", "num"), Col("rel_err", "max rel. error", "sci"),
           Col("step_us", "step (µs)", "g"), Col("import_s", "import (s)", "s"),
           Col("peak_rss_mb", "peak RSS (MB)", "mb"), Col("error", "error", "detail")]


def x2_section(run: Run, task: str) -> dict:
    all_rows = [r for r in run.rows if r.get("task") == task and r.get("status") != "not_applicable"]
    ok = [r for r in all_rows if r.get("status") == "ok"]
    trows = [{"framework": r.get("framework"), "variant": r.get("variant"), "status": r.get("status"),
              "x_final": get(r, "metrics.x_final"), "exact": get(r, "metrics.exact_final"),
              "rel_err": get(r, "metrics.max_rel_error"),
              "step_us": (number(get(r, "timing.step_s.median")) or 0) * 1e6 or None,
              "import_s": get(r, "timing.import_s"), "peak_rss_mb": get(r, "memory.peak_rss_mb"),
              "error": r.get("error")} for r in all_rows]
    spec = next((r.get("spec") for r in ok if r.get("spec")), None) or {}
    x0, lr, steps = spec.get("x0", 10.0), spec.get("lr", 0.1), spec.get("steps", 20)
    exact = [x0 * (1 - 2 * lr) ** k for k in range(steps + 1)]
    chart_list = [
        charts.curves(ok, lambda r: get(r, "metrics.trajectory"), "Trajectory x_k (log scale)", "x", xtitle="step k",
                      log=True, start=0, extra=[charts.reference_line(list(range(steps + 1)), exact, "exact 10·0.8^k")],
                      note="every framework must follow 10·0.8^k within float32 precision"),
        charts.curves(ok, lambda r: [abs(a - b) / abs(b) for a, b in zip(get(r, "metrics.trajectory", []), exact)],
                      "Relative error vs the exact trajectory", "|x_k − exact| / exact", xtitle="step k", start=0,
                      note="float32 rounding: ~1e-7 per step", ytickformat=".1e"),
    ]
    chart_list += [charts.bars(ok, lambda r: (number(get(r, "timing.step_s.median")) or 0) * 1e6 or None,
                               "Step time (framework overhead on a scalar)", "µs (log scale)", log=True,
                               err=lambda r: (number(get(r, "timing.step_s.iqr")) or 0) * 1e6 or None),
                   charts.bars(ok, lambda r: get(r, "timing.import_s"), "Framework import time", "s",
                               note="importing the implementation module, and with it the framework, in a fresh process")]
    return {"groups": [{"name": "", "charts": [c for c in chart_list if c], "note": ""}], "sweeps": [],
            "table": table(X2_COLS, trows, f"{task}.csv")}


def task_sections(run: Run) -> list[dict]:
    out = []
    for task in [t for t in TASKS if any(r.get("task") == t for r in run.rows)]:
        kind = TASKS[task].kind
        if not any(r.get("task") == task and r.get("status") not in ("not_applicable", "unavailable")
                   for r in run.rows):
            continue
        section = tanh_section if task == "tanh_regression" else {
            "x2": x2_section, "linreg": linreg_section, "mnist": mnist_section}[kind]
        body = section(run, task)
        out.append({"task": task, "title": task_title(task), "nav": NAV_TITLES.get(task, task_title(task)),
                    "description": TASKS[task].description, **body})
    return out
