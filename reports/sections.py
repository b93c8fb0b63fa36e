"""The report's run-wide sections: header (machine, versions, settings), the matrix, ONNX parity and
int8 quantization, shared-weight parity (parity.jsonl) and the table of framework defaults."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from harness.matrix.registry import FRAMEWORKS, NOT_APPLICABLE, impl_path
from harness.matrix.tasks import PRECISIONS, TASKS
from harness.running.merge import host_of
from reports import charts, idioms
from reports.overhead import overhead_text
from reports.data import (STATUSES, Run, config_key, first_of, framework_title, get, host_label, number,
                          params_text, task_title)
from reports.format import Col, fmt_ms, fmt_num, fmt_value, ms, table

FRAMEWORK_PACKAGES = ("torch", "lightning", "tensorflow", "tf-keras", "keras", "jax", "jaxlib", "flax", "optax")
EXPORT_PACKAGES = ("onnx", "onnxruntime", "onnxscript", "tf2onnx", "jax2onnx")
STATUS_LABELS = {"ok": "ok", "diverged": "diverged", "failed": "failed", "timeout": "timeout",
                 "not_applicable": "n/a", "unavailable": "unavailable"}


def stability_banner(run: Run) -> dict | None:
    """The processes timed while the machine was not quiet (disturbed: other processes or steal took
    CPU; unstable: the steps spread widely), for the banner on top of the report; None when all were
    stable or nothing was recorded."""
    from reports.data import chosen_processes, flag_of

    shaky = [r for r in chosen_processes(run.all_rows).values() if flag_of(r) in ("disturbed", "unstable")
             and (TASKS[r["task"]].timed if r.get("task") in TASKS else True)]  # x² checks an answer only
    if not shaky:
        return None
    items = [{"cell": r.get("cell"), "repeat": r.get("repeat") or 0, "flag": flag_of(r),
              "reasons": "; ".join(str(x) for x in (r["stability"].get("reasons") or []))} for r in shaky]
    return {"count": len(items), "disturbed": sum(i["flag"] == "disturbed" for i in items),
            "unstable": sum(i["flag"] == "unstable" for i in items), "cells": items}


# --------------------------------------------------------------------------------------------------
# header: machine, versions, settings
# --------------------------------------------------------------------------------------------------
def environment_section(run: Run) -> dict:
    env = run.env
    versions = dict(env.get("versions") or {})
    for r in run.rows:
        for k, v in (r.get("versions") or {}).items():
            versions.setdefault(k, v)
    ordered = [(k, versions[k], "framework") for k in FRAMEWORK_PACKAGES if k in versions]
    ordered += [(k, versions[k], "export") for k in EXPORT_PACKAGES if k in versions]
    ordered += [(k, v, "other") for k, v in sorted(versions.items())
                if k not in FRAMEWORK_PACKAGES and k not in EXPORT_PACKAGES]
    roof = env.get("roofline") or {}
    threads = env.get("threads")
    thread_apis = sorted({f"{k}={v}" for r in run.rows for k, v in (r.get("threads") or {}).items() if k != "threads"})
    machine = [
        ("CPU", env.get("cpu")), ("Cores", env.get("cores")),
        ("Memory", f"{env['memory_gb']} GB" if env.get("memory_gb") else None),
        ("OS", env.get("os")), ("Python", env.get("python")),
        ("sgemm roofline", f"{roof['sgemm_gflops']:.0f} GFLOP/s ({roof.get('library', '')}, n={roof.get('n')}, "
                           f"{roof.get('threads')} threads)" if number(roof.get("sgemm_gflops")) else None),
    ]
    settings = [
        ("Profile", env.get("profile") or _common(run.rows, "profile")),
        ("Device", env.get("device") or _common(run.rows, "device")),
        ("Threads", f"{threads} per framework (OMP/MKL/OpenBLAS/TF intra- and inter-op)" if threads else None),
        ("Thread APIs", ", ".join(thread_apis) or None),
        ("Precision", _precision_text(env)),
        ("Init", _common(run.rows, "init")),
        ("Git commit", env.get("git_commit")),
        ("Harness overhead", overhead_text(run.rows)),
    ]
    envs, seen = [], set()
    for e in env.get("environments") or []:
        python = str(e.get("python") or "")
        name = Path(python).parent.parent.name if python else "?"
        if name in seen:
            continue
        seen.add(name)
        envs.append({"name": name, "date": e.get("date"),
                     "frameworks": ", ".join(f"{k} {v}" for k, v in (e.get("versions") or {}).items()
                                             if k in FRAMEWORK_PACKAGES) or "—"})
    counts = {s: sum(r.get("status") == s for r in run.rows) for s in STATUSES}
    return {"machine": [(k, v) for k, v in machine if v not in (None, "")], "hosts": hosts_of(run),
            "settings": [(k, v) for k, v in settings if v not in (None, "")],
            "versions": ordered, "environments": envs, "counts": counts, "total": len(run.rows),
            "date": nice_date(env.get("date") or _common(run.rows, "started_at")), "profile": env.get("profile")}


def hosts_of(run: Run) -> list[dict]:
    """Every machine the run's rows were timed on (merged shards: environment.json's `hosts`), with the
    number of rows from each; rows that name no host count for the run's own machine."""
    listed = [h for h in run.env.get("hosts") or [] if isinstance(h, dict)] or [host_of(run.env)]
    out: dict[str, dict] = {}
    for h in listed:
        entry = out.setdefault(host_label({"host": h}), {**h, "rows": 0, "shards": []})
        entry["shards"] += [h["shard"]] if h.get("shard") else []
    for r in run.all_rows:
        key = host_label(r) or host_label({"host": listed[0]})
        out.setdefault(key, {**(r.get("host") or {}), "rows": 0, "shards": []})["rows"] += 1
    return [{**h, "shard": ", ".join(h.pop("shards")) or None} for h in out.values()]


def nice_date(text) -> str | None:
    """2026-11-22T11:53:16+0000 -> 2026-11-22 11:53 (+0000)."""
    if not text:
        return None
    try:
        t = pd.Timestamp(str(text))
    except ValueError:
        return str(text)
    return t.strftime("%Y-%m-%d %H:%M") + (f" (UTC{t.strftime('%z')})" if t.tzinfo else "")


def _common(rows, key):
    values = sorted({str(r.get(key)) for r in rows if r.get(key) is not None})
    return ", ".join(values) if values else None


# --------------------------------------------------------------------------------------------------
# the matrix
# --------------------------------------------------------------------------------------------------
def headline(row: dict) -> tuple[str, str]:
    """(main figure, secondary line) of an ok cell."""
    kind = TASKS[row["task"]].kind if row.get("task") in TASKS else ""
    step = get(row, "timing.step_s.median")
    if kind == "x2":
        return (f"x = {fmt_num(get(row, 'metrics.x_final'), 5)}",
                f"rel. err {fmt_value(get(row, 'metrics.max_rel_error'), 'sci')}")
    if kind == "linreg":
        mse, cf = number(get(row, "metrics.test_mse")), number(get(row, "metrics.closed_form_test_mse"))
        ratio = f" · ×{mse / cf:.3f} of closed form" if mse is not None and cf else ""
        timing = f"{fmt_ms(step)}/step" if step is not None else f"{fmt_num(get(row, 'timing.train_s'))} s train"
        return f"MSE {fmt_num(mse, 4)}", f"{timing}{ratio}"
    if kind == "mnist":
        epochs = get(row, "metrics.epochs_trained")
        epochs = f" · {epochs} ep" if epochs is not None else ""
        return (fmt_value(get(row, "metrics.test_accuracy"), "pct2"),
                f"{fmt_ms(step)}/step · {fmt_num(get(row, 'timing.train_s'))} s train{epochs}")
    return row.get("status", ""), ""


def flag_of_row(row: dict) -> str | None:
    from reports.data import flag_of

    return flag_of(row)


def matrix_section(run: Run) -> dict:
    frameworks = [f for f in FRAMEWORKS if any(r.get("framework") == f for r in run.rows)]
    frameworks += sorted({r.get("framework") for r in run.rows} - set(frameworks) - {None})
    rows: dict[tuple, dict] = {}
    for r in run.rows:
        key = config_key(r)
        entry = rows.setdefault(key, {"task": r.get("task"), "title": task_title(r.get("task")),
                                      "tags": [t for t in (r.get("dataset"), r.get("mode"), params_text(r),
                                                           r.get("device") if r.get("device") != "cpu" else None)
                                               if t],
                                      "cells": {f: [] for f in frameworks}})
        status = r.get("status") or "failed"
        item = {"variant": r.get("variant"), "status": status, "label": STATUS_LABELS.get(status, status),
                "cell": r.get("cell")}
        if flag_of_row(r) in ("disturbed", "unstable"):
            item["stability"] = f"{flag_of_row(r)}: " + "; ".join(str(x) for x in (r["stability"].get("reasons") or []))
        if status == "ok":
            item["main"], item["sub"] = headline(r)
            onnx_status = get(r, "onnx.status")
            if onnx_status and onnx_status != "ok":
                item["onnx"] = onnx_status
            quality = _quality_flag(r)
            if quality:
                item["flag"] = quality
        else:
            item["error"] = r.get("error") or status
        entry["cells"].setdefault(r.get("framework"), []).append(item)
    # a framework with no row in a configuration: say why (n/a) or that it was not run; a sweep or
    # override row (key[3]: its settings) covers only the columns it was asked for, so it stays empty
    for key, entry in rows.items():
        for f in frameworks:
            if not entry["cells"].get(f) and not key[3]:
                reason = NOT_APPLICABLE.get((entry["task"], f))
                entry["cells"][f] = [{"variant": "", "status": "not_applicable" if reason else "missing",
                                      "label": "n/a" if reason else "not run", "error": reason or ""}]
    flat = []
    for r in run.rows:
        main, sub = headline(r) if r.get("status") == "ok" else ("", "")
        flat.append({"task": r.get("task"), "dataset": r.get("dataset"), "mode": r.get("mode"),
                     "params": params_text(r), "framework": r.get("framework"), "variant": r.get("variant"),
                     "status": r.get("status"), "error": r.get("error"), "result": main, "detail": sub,
                     "test_accuracy": get(r, "metrics.test_accuracy"), "test_mse": get(r, "metrics.test_mse"),
                     "step_ms": ms(get(r, "timing.step_s.median")), "train_s": get(r, "timing.train_s"),
                     "peak_rss_mb": get(r, "memory.peak_rss_mb"), "onnx": get(r, "onnx.status")})
    cols = [Col(k, k) for k in ("task", "dataset", "mode", "params", "framework", "variant", "status", "error",
                                "result", "detail", "test_accuracy", "test_mse", "step_ms", "train_s",
                                "peak_rss_mb", "onnx")]
    return {"frameworks": [(f, framework_title(f)) for f in frameworks], "rows": list(rows.values()),
            "csv": table(cols, flat, "matrix.csv")}


def _quality_flag(row) -> str | None:
    """A number that is 'ok' but suspicious deserves a visible flag."""
    task = row.get("task")
    if task == "x2_descent":
        err = number(get(row, "metrics.max_rel_error"))
        if err is not None and err > 1e-5:
            return f"trajectory off by {err:.1e} (tolerance 1e-5)"
    save = get(row, "metrics.save_load.status")
    if save and save != "ok":
        return f"save/load {save}: {get(row, 'metrics.save_load.error', '')}"
    return None


# --------------------------------------------------------------------------------------------------
# ONNX, quantization, parity, defaults
# --------------------------------------------------------------------------------------------------
ONNX_COLS = [
    Col("task", "task"), Col("config", "config"), Col("framework", "framework"), Col("variant", "variant"),
    Col("status", "status", "status"), Col("exporter", "exporter"), Col("opset", "opset", "int"), Col("max_abs_diff", "max |Δ|", "sci"),
    Col("mismatch_pct", "mismatch %", "g", "elements outside atol 1e-5 + rtol 1e-3"),
    Col("argmax", "argmax agreement", "pct2"), Col("dynamic_batch", "dynamic batch", "bool"),
    Col("ort_acc", "ORT accuracy", "pct"), Col("native_ms", "native b256 (ms)", "ms"),
    Col("ort_ms", "ORT b256 (ms)", "ms"), Col("ort_speedup", "ORT speed-up", "ratio"),
    Col("error", "unsupported / error", "detail"),
]
QUANT_COLS = [
    Col("q_status", "int8 status", "status"), Col("q_acc", "int8 accuracy", "pct"),
    Col("q_drop", "accuracy change", "pp", "int8 minus float32, same rows, same runtime"),
    Col("q_mse", "MSE increase", "g", "linear regression: int8 test MSE vs float32, in %"),
    Col("q_ms", "int8 b256 (ms)", "ms"), Col("q_speedup_1", "speed-up b1", "ratio", "float32 ORT time / int8 ORT time"),
    Col("q_speedup", "speed-up b256", "ratio", "float32 ORT time / int8 ORT time"),
    Col("q_file_mb", "int8 file (MB)", "g"), Col("q_error", "int8 error", "detail"),
]


def onnx_section(run: Run) -> dict | None:
    rows = [r for r in run.rows if isinstance(r.get("onnx"), dict)]
    if not rows and not run.onnx_cross and not run.notes:
        return None
    quant = any(isinstance(get(r, "onnx.quantized"), dict) for r in rows)
    trows = []
    for r in rows:
        native, ort = number(get(r, "timing.infer_ms.batch_256.median")), number(get(r, "onnx.ort_infer_ms.batch_256.median"))
        item = {"task": r.get("task"), "framework": r.get("framework"), "variant": r.get("variant"),
                "config": " ".join(t for t in (r.get("dataset"), r.get("mode"), params_text(r)) if t),
                "status": get(r, "onnx.status"), "exporter": get(r, "onnx.exporter"), "opset": get(r, "onnx.opset"),
                "max_abs_diff": get(r, "onnx.max_abs_diff"), "mismatch_pct": get(r, "onnx.mismatch_pct"),
                "argmax": get(r, "onnx.argmax_agreement"), "dynamic_batch": get(r, "onnx.dynamic_batch"),
                "ort_acc": get(r, "onnx.ort_test_accuracy"), "native_ms": native, "ort_ms": ort,
                "ort_speedup": native / ort if native and ort else None, "file_mb": get(r, "onnx.file_mb"),
                "error": get(r, "onnx.error")}
        if quant:
            q = get(r, "onnx.quantized") or {}
            q_acc = number(first_of(q, "test_accuracy", "ort_test_accuracy", "accuracy"))
            fp_acc = number(first_of(q, "fp32_test_accuracy")) or number(get(r, "onnx.ort_test_accuracy"))
            q_ms = number(first_of(q, "ort_infer_ms.batch_256.median", "infer_ms.batch_256.median"))
            drop = number(q.get("accuracy_drop"))  # percentage points lost (harness.checks.onnx_parity)
            change = -drop / 100 if drop is not None else (q_acc - fp_acc if None not in (q_acc, fp_acc) else None)
            speed = number(first_of(q, "speedup_batch_256", "speedup"))
            if speed is None and ort and q_ms:
                speed = ort / q_ms
            item.update(q_status=q.get("status"), q_acc=q_acc, q_drop=change, q_ms=q_ms, q_speedup=speed,
                        q_speedup_1=number(q.get("speedup_batch_1")), q_mse=number(q.get("mse_increase_pct")),
                        q_file_mb=number(q.get("file_mb")), q_error=q.get("error"))
        trows.append(item)
    counts = {s: sum(t["status"] == s for t in trows) for s in dict.fromkeys(t["status"] for t in trows)}
    qtable = None
    if quant:
        qrows = [t for t in trows if t.get("q_status") is not None]
        qcols = [c for c in QUANT_COLS if any(t.get(c.key) is not None for t in qrows) or c.key == "q_status"]
        qtable = table(ONNX_COLS[:4] + [Col("ort_acc", "float32 ORT accuracy", "pct"),
                                        Col("ort_ms", "float32 b256 (ms)", "ms"), Col("file_mb", "float32 file (MB)", "g")]
                       + qcols, qrows, "onnx_int8.csv", title="onnxruntime quantize_dynamic (int8 weights)")
    return {"table": table(ONNX_COLS, trows, "onnx_parity.csv"), "counts": counts, "quantized": qtable,
            "cross": cross_section(run), "notes": run.notes}


DEPLOY_COLS = [
    Col("task", "task"), Col("framework", "framework"), Col("variant", "variant"), Col("status", "status", "status"),
    Col("exporter", "exporter"), Col("file_mb", "file (MB)", "mb", "the .pt2 file, the SavedModel folder, the serialized jax.export"),
    Col("export_s", "export (s)", "s"), Col("load_s", "load (s)", "s", "reading the file back into a callable, without the model code"),
    Col("first_call_s", "first call (s)", "s", "batch 256, including any compilation the loaded program needs"),
    Col("max_abs_diff", "max |Δ|", "sci", "loaded vs live model, batch 256 and 37"),
    Col("argmax", "argmax agreement", "pct2"), Col("error", "not applicable / error", "detail"),
]


def deploy_section(run: Run) -> dict | None:
    """The deployment exports (harness.checks.deploy_export): each framework's serving format loaded back."""
    rows = [r for r in run.rows if isinstance(r.get("deploy"), dict)]
    if not rows:
        return None
    trows = [{"task": r.get("task"), "framework": r.get("framework"), "variant": r.get("variant"),
              "argmax": get(r, "deploy.argmax_agreement"),
              **{k: get(r, f"deploy.{k}") for k in ("status", "exporter", "file_mb", "export_s", "load_s",
                                                     "first_call_s", "max_abs_diff", "error")}} for r in rows]
    counts = {s: sum(t["status"] == s for t in trows) for s in dict.fromkeys(t["status"] for t in trows)}
    return {"table": table(DEPLOY_COLS, trows, "deploy_exports.csv"), "counts": counts}


# the cross-framework check (onnx_cross.json): tolerances as harness.checks.onnx_cross applies them
CROSS_SPREAD_POINTS = 0.5
CROSS_MSE_SPREAD_PCT = 0.5


def cross_section(run: Run) -> dict | None:
    """`python -m harness.checks.onnx_cross` (onnx_cross.json): per group of cells that saw the same data, every
    column's exported file run in one onnxruntime on the same test inputs. One small table per group."""
    data = run.onnx_cross
    if not data:
        return None
    points = number(data.get("spread_points_allowed")) or CROSS_SPREAD_POINTS
    mse_pct = number(data.get("mse_spread_pct_allowed")) or CROSS_MSE_SPREAD_PCT
    groups = []
    for i, g in enumerate(data.get("groups") or []):
        groups.append(_cross_group(g, i, points, mse_pct))
    counts = {v: sum(g["verdict"] == v for g in groups) for v in ("ok", "wide", "no file")}
    return {"groups": groups, "counts": {k: v for k, v in counts.items() if v},
            "onnxruntime": data.get("onnxruntime"), "created": nice_date(data.get("created_at")),
            "points": points, "mse_pct": mse_pct}


def _cross_group(g: dict, index: int, points: float, mse_pct: float) -> dict:
    labels = [str(x) for x in (g.get("labels") or [])]
    columns = [c for c in (g.get("columns") or []) if isinstance(c, dict)]
    classify = "accuracy_spread_points" in g or any("ort_test_accuracy" in c for c in columns)
    agree, diff = _matrix(g.get("argmax_agreement")), _matrix(g.get("max_abs_diff"))
    rows = []
    for c in columns:
        name = str(c.get("cell"))
        j = labels.index(name) if name in labels else None
        others = [k for k in range(len(labels)) if k != j] if j is not None else []
        row = {"framework": framework_title(c.get("framework")), "variant": c.get("variant"),
               "exporter": c.get("exporter"), "status": c.get("status"), "error": c.get("error"), "cell": name}
        if classify:
            row.update(ort=c.get("ort_test_accuracy"), native=c.get("native_test_accuracy"))
        else:
            row.update(ort=c.get("ort_test_mse"), native=c.get("native_test_mse"))
        row["agree"] = _min_max(agree, j, others, min) if agree else None
        row["diff"] = _min_max(diff, j, others, max) if diff else None
        rows.append(row)
    if classify:
        cols = [Col("ort", "ONNX accuracy", "pct2", "argmax of the ONNX output in onnxruntime vs the test labels"),
                Col("native", "native accuracy", "pct2", "the framework's own test accuracy (results.jsonl)")]
    else:
        cols = [Col("ort", "ONNX test MSE", "num", "the ONNX output in onnxruntime vs the test targets"),
                Col("native", "native test MSE", "num", "the framework's own test MSE (results.jsonl)")]
    if agree:
        cols.append(Col("agree", "min argmax agreement", "pct2", "lowest agreement of this column's predicted "
                                                                  "classes with any other column's"))
    if diff:
        cols.append(Col("diff", "max |Δ| vs the others", "sci", "largest absolute difference between this column's "
                                                                 "outputs and any other's (same initial weights)"))
    if any(r["status"] != "ok" for r in rows):
        cols.insert(0, Col("status", "status", "status"))
    cols = [Col("framework", "framework"), Col("variant", "variant"), Col("exporter", "exporter")] + cols
    cols.append(Col("error", "error", "detail"))
    where = [str(x) for x in (task_title(g.get("task")), g.get("dataset"), g.get("mode")) if x]
    extra = " ".join(f"{k}={v}" for k, v in sorted((g.get("params") or {}).items())) if isinstance(g.get("params"), dict) else ""
    title = " · ".join(where + ([extra] if extra else []) + [f"init {g.get('init') or '?'}"])
    parts = []
    if number(g.get("accuracy_spread_points")) is not None:
        parts.append(f"accuracy spread {g['accuracy_spread_points']:.2f} points (allowed {points:g})")
    if number(g.get("min_argmax_agreement")) is not None:
        parts.append(f"min argmax agreement {100 * g['min_argmax_agreement']:.2f} %")
    if number(g.get("mse_spread_pct")) is not None:
        parts.append(f"test-MSE spread {g['mse_spread_pct']:.3f} % (allowed {mse_pct:g} %)")
    if number(g.get("max_abs_diff_overall")) is not None:
        parts.append(f"max |Δ| {g['max_abs_diff_overall']:.2e}")
    within = g.get("within_tolerance")
    verdict = "ok" if within is True else ("wide" if within is False else "no file")
    not_run = [{"cell": n.get("cell"), "why": " — ".join(str(x) for x in (
                    f"cell {n.get('status')}" if n.get("status") and n.get("status") != "ok" else None,
                    f"onnx {n.get('onnx_status')}" if n.get("onnx_status") else None, n.get("error")) if x)
                or "no file"} for n in (g.get("not_run") or []) if isinstance(n, dict)]
    slug = "".join(ch if ch.isalnum() else "_" for ch in "_".join(str(x) for x in (
        g.get("task"), g.get("dataset"), g.get("mode"), g.get("init")) if x))
    return {"title": title, "profile": g.get("profile"), "n_test": g.get("n_test"), "verdict": verdict,
            "detail": ", ".join(parts) or "no runnable file", "not_run": not_run,
            "table": table(cols, rows, f"onnx_cross_{slug or index}.csv")}


def _matrix(value) -> list[list] | None:
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        return value
    return None


def _min_max(m: list[list], j, others, pick):
    if j is None or not others or j >= len(m):
        return None
    values = [number(m[j][k]) for k in others if k < len(m[j])]
    values = [v for v in values if v is not None]
    return pick(values) if values else None


PARITY_COLS = [
    Col("group", "group"), Col("framework", "framework"), Col("variant", "variant"), Col("status", "status", "status"),
    Col("verdict", "verdict", "status"), Col("rule", "update rule"),
    Col("first_step", "first-step loss vs float64", "sci", "relative deviation of the first batch's loss"),
    Col("first_logits", "initial outputs max |Δ|", "sci", "untrained model on x_train[:32] vs the float64 forward"),
    Col("curve_rule", "curve vs same-rule median", "sci", "max over steps of the relative deviation"),
    Col("curve_ref", "curve vs float64", "sci", "against the float64 reference with the column's own update rule"),
    Col("curve_all", "curve vs all-column median", "sci"), Col("tol", "tolerance", "sci"),
    Col("failures", "failures", "detail"), Col("explained", "explained", "detail"), Col("error", "error", "detail"),
]
PARITY_REF_COLS = [
    Col("group", "group"), Col("columns", "columns", "int"), Col("first_step_loss", "first-step loss (float64)", "num"),
    Col("float32_floor", "float32 floor", "sci", "how far the same training in float32 drifts from float64"),
    Col("eps_placement", "ε placement effect", "sci", "epsilon hat vs eps on sqrt(v_hat), float64"),
    Col("tol", "curve tolerance applied", "sci"), Col("rules", "update rules among the columns"),
    Col("error", "error", "detail"),
]


def parity_section(run: Run) -> dict | None:
    """`dlrosetta parity` verdicts (parity.jsonl): per group a float64 reference row and one row per column."""
    if not run.parity:
        return None
    refs = [r for r in run.parity if r.get("kind") == "reference"]
    cols = [r for r in run.parity if r.get("kind", "column") == "column"]
    rows = []
    for r in cols:
        passed = r.get("passed")
        rows.append({"group": r.get("group") or task_title(r.get("task")), "framework": r.get("framework"),
                     "variant": r.get("variant"), "status": r.get("status"),
                     "verdict": None if passed is None else ("pass" if passed else "fail"),
                     "rule": get(r, "metrics.update_rule"), "first_step": get(r, "metrics.first_step_rel_dev"),
                     "first_logits": get(r, "metrics.first_logits_max_abs_diff"),
                     "curve_rule": get(r, "metrics.max_curve_rel_dev"), "curve_ref": get(r, "metrics.curve_rel_dev_vs_reference"),
                     "curve_all": get(r, "metrics.curve_rel_dev_vs_all_median"),
                     "tol": get(r, "thresholds.curve_rel_applied"), "failures": "; ".join(r.get("failures") or []),
                     "explained": r.get("explained"), "error": r.get("error")})
    ref_rows = [{"group": r.get("group"), "columns": get(r, "metrics.n_columns"),
                 "first_step_loss": get(r, "metrics.first_step_loss"), "float32_floor": get(r, "metrics.float32_floor"),
                 "eps_placement": get(r, "metrics.eps_placement_max_rel_dev"),
                 "tol": get(r, "thresholds.curve_rel_applied"),
                 "rules": ", ".join(f"{k} ×{v}" for k, v in (get(r, "metrics.n_columns_by_rule") or {}).items()),
                 "error": r.get("error")} for r in refs]
    chart_list = []
    for group in dict.fromkeys(r.get("group") or r.get("task") for r in run.parity):
        members = [r for r in cols if (r.get("group") or r.get("task")) == group and get(r, "metrics.step_losses")]
        ref = next((r for r in refs if r.get("group") == group), None)
        extra = []
        if ref and get(ref, "metrics.step_losses"):
            losses = get(ref, "metrics.step_losses")
            extra.append(charts.reference_line(list(range(1, len(losses) + 1)), losses,
                                               f"float64 reference ({get(ref, 'metrics.rule')})"))
        c = charts.curves(members, lambda r: get(r, "metrics.step_losses"), f"Step losses from shared weights — {group}",
                          "loss (log scale)", xtitle="step", log=True, extra=extra,
                          note="same initial weights, batches and Adam ε in every column; dotted: the float64 "
                               "numpy reference")
        if c:
            chart_list.append(c)
    passed = sum(r["verdict"] == "pass" for r in rows)
    failed = sum(r["verdict"] == "fail" for r in rows)
    return {"table": table(PARITY_COLS, rows, "parity.csv"), "charts": chart_list,
            "references": table(PARITY_REF_COLS, ref_rows, "parity_reference.csv", title="float64 references"),
            "passed": passed, "failed": failed}


def defaults_section() -> dict:
    """Each column's optimiser and initialiser defaults, as `harness.checks.parity` writes them down (its float64
    reference implements each update rule); a framework it does not list is read from its file."""
    try:
        from harness.checks.parity import ADAM, NATIVE_INIT, RULES
    except ImportError:
        ADAM, NATIVE_INIT, RULES = {}, {}, {}
    rows = []
    for fw, info in FRAMEWORKS.items():
        adam, init = ADAM.get(fw), NATIVE_INIT.get(fw)
        if adam is None and init is None:
            if fw == "numpy":
                continue
            rows.append({"framework": info.title, **_own_choice(fw)})
            continue
        rows.append({"framework": info.title, "api": (adam or {}).get("api"), "eps": (adam or {}).get("default_eps"),
                     "placement": (adam or {}).get("placement"), "kernel": init,
                     "source": RULES.get((adam or {}).get("rule"), "")})
    cols = [Col("framework", "framework"), Col("api", "optimizer"), Col("eps", "default Adam ε", "short"),
            Col("placement", "update"), Col("kernel", "native initialisation"), Col("source", "note")]
    return {"table": table(cols, rows, "defaults.csv",
                           note="With --init native each column keeps its framework's defaults, so curves differ "
                                "from the first step; --init shared (dlrosetta parity) gives every column the same "
                                "weights and ε = 1e-8.")}


INITIALIZERS = re.compile(r"\b(lecun_normal|lecun_uniform|glorot_uniform|glorot_normal|xavier_uniform|xavier_normal|"
                          r"he_normal|he_uniform|kaiming_uniform|kaiming_normal|variance_scaling|truncated_normal|"
                          r"random_normal|random_uniform|orthogonal)\b")


def _own_choice(fw: str) -> dict:
    """JAX and TF2 have no layer defaults: what the implementation file itself chose, read from its
    source (initialiser names, the Adam epsilon line and its comment)."""
    path = impl_path("mnist_mlp", fw)
    default_eps = "1e-8 (optax.adam)" if fw == "jax" else "1e-7 (tf.keras.optimizers.Adam)"
    if path is None:
        return {"eps": None, "kernel": "—", "source": f"implementations/mnist_mlp/{FRAMEWORKS[fw].module}.py is not written yet"}
    text = path.read_text(encoding="utf-8", errors="replace")
    summary, _ = idioms.file_info(text)
    kernel = INITIALIZERS.search(text)
    bias = "zeros" if re.search(r"bias[^\n]*zeros|zeros[^\n]*bias", text) else "see the file"
    eps, placement = default_eps, ""
    for line in text.splitlines():
        code, _, comment = line.partition("#")
        if re.search(r"\beps(ilon)?\b", code) and comment.strip():
            value = re.search(r"\d(?:\.\d+)?e-\d+", code)
            eps = value.group(0) if value else default_eps
            placement = comment.strip()
            break
    return {"eps": eps, "placement": placement,
            "kernel": f"{kernel.group(1) if kernel else 'see the file'} kernels, {bias} biases (read from the file)",
            "source": f"{path.parent.name}/{path.name}: {summary}"}


def _precision_text(env: dict) -> str | None:
    text = {"float32": "fp32"}.get(env.get("precision"), env.get("precision"))  # older runs wrote "float32"
    native = env.get("cpu_bf16")
    if text and text != "fp32" and isinstance(native, list):
        text += f" (CPU bfloat16 instructions: {', '.join(native)})" if native else \
            " (this CPU has no bfloat16 instructions: bf16 is emulated)"
    return text


def precision_section(run: Run) -> dict | None:
    """`--precision`: each MNIST cell's accuracy and steady-state step time per precision, side by side, with
    the step time against the same cell's fp32 (the row's `precision` block proves the dtypes it trained in)."""
    def asked(r):
        return (r.get("params") or {}).get("precision") or get(r, "spec.precision") or "fp32"

    rows = [r for r in run.rows if r.get("task") in ("mnist_mlp", "mnist_cnn")]
    present = [p for p in PRECISIONS if any(asked(r) == p for r in rows)]
    if present == ["fp32"] or not present:
        return None
    groups: dict[tuple, dict] = {}
    for r in rows:
        others = {k: v for k, v in (r.get("params") or {}).items() if k != "precision"}
        key = (r.get("task"), r.get("framework"), r.get("variant"), r.get("dataset"), r.get("device"),
               " ".join(f"{k}={v}" for k, v in sorted(others.items())))
        groups.setdefault(key, {})[asked(r)] = r
    out = []
    for (task, fw, variant, dataset, device, others), by in groups.items():
        if len(by) < 2:
            continue  # a cell run in one precision only has nothing beside it
        row = {"task": task, "framework": framework_title(fw), "variant": variant, "settings": others or None}
        base = get(by.get("fp32", {}), "timing.step_s.median")
        notes = []
        for p in present:
            r = by.get(p)
            if r is None:
                continue
            ok = r.get("status") == "ok"
            step = get(r, "timing.step_s.median") if ok else None
            row[f"{p}_acc"] = get(r, "metrics.test_accuracy") if ok else None
            row[f"{p}_step"] = ms(step)
            row[f"{p}_ratio"] = (number(step) / number(base)) if p != "fp32" and number(step) and number(base) else None
            row[f"{p}_dtypes"] = (f"{get(r, 'precision.params')} / {get(r, 'precision.compute')}"
                                  if isinstance(r.get("precision"), dict) else None)
            if not ok:
                notes.append(f"{p}: {r.get('status')} {r.get('error') or ''}".strip())
        row["error"] = "; ".join(notes) or None
        out.append(row)
    cols = [Col("task", "task"), Col("framework", "framework"), Col("variant", "variant"), Col("settings", "settings")]
    for p in present:
        cols += [Col(f"{p}_acc", f"{p} accuracy", "pct2"),
                 Col(f"{p}_step", f"{p} step (ms)", "ms", "steady-state median step"),
                 Col(f"{p}_dtypes", f"{p} weights / compute", "text", "read back from the trained model")]
        if p != "fp32":
            cols.append(Col(f"{p}_ratio", f"{p} / fp32 step", "ratio", "above 1: slower than float32"))
    cols.append(Col("error", "failed", "detail"))
    return {"table": table(cols, out, "precision.csv"), "precisions": present} if out else None
