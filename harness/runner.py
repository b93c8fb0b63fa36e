"""Runs cells, each in its own process, and appends one result row per finished cell.

Each cell's child gets a clean environment (fixed thread count, caches under the run dir), a
timeout, and its peak RSS read from ``os.wait4`` on that child alone. A row is appended to
``results.jsonl`` (flush + fsync) the moment its cell ends, so an interrupted run loses nothing and
``--resume`` picks up where it stopped.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import environment
from harness.registry import FRAMEWORKS, Cell, applicability, gpu_present, missing_packages
from harness.tasks import SECONDARY, TASKS, make_spec, spec_to_dict

SCHEMA = 1
# a linear regression diverged when its test MSE ends worse than the zero model it started from (and
# far from least squares); an under-trained one (few steps, small lr) is slow, not failed
DIVERGED_FACTOR = 10.0
KEEP_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH", "LD_LIBRARY_PATH",
            "CUDA_HOME", "DLROSETTA_DATA", "DLROSETTA_CACHE", "DLROSETTA_OFFLINE", "DLROSETTA_IMPL_PACKAGE",
            "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


@dataclass
class RunOptions:
    out: Path
    profile: str = "full"
    timeout: float = 1800.0
    threads: int = os.cpu_count() or 1
    data_dir: str | None = None
    init: str = "native"
    onnx: bool = True
    run_id: str = ""
    parity: bool = False  # record per-step losses and initial outputs (`dlrosetta parity`)


def cell_env(cell: Cell, opts: RunOptions) -> dict:
    """The child's environment: only what it needs, and the same thread settings for every framework."""
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    run = opts.out.resolve()
    n = str(opts.threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS"):
        env[var] = n
    env.update(
        PYTHONUNBUFFERED="1", PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2",
        TMPDIR=str(run / "tmp"), KERAS_HOME=str(run / "cache" / "keras"), XDG_CACHE_HOME=str(run / "cache"),
        TORCHINDUCTOR_CACHE_DIR=str(run / "cache" / "inductor"), MPLCONFIGDIR=str(run / "cache" / "mpl"),
        TF_ENABLE_ONEDNN_OPTS=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"),
    )
    # JAX preallocates 75 % of a GPU and must not grab one that a cpu cell should not use
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    if cell.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        env["JAX_PLATFORMS"] = "cpu"
    if opts.parity:  # `dlrosetta parity`: deterministic kernels, and true fp32 (no TF32) on a GPU
        env.update(TF_DETERMINISTIC_OPS="1", NVIDIA_TF32_OVERRIDE="0", JAX_DEFAULT_MATMUL_PRECISION="highest")
        if cell.device == "gpu":
            env.update(XLA_FLAGS="--xla_gpu_deterministic_ops=true", CUBLAS_WORKSPACE_CONFIG=":4096:8")
    # the idiom to run, for the rare file that must choose before its framework is imported
    env["DLROSETTA_VARIANT"] = cell.variant
    backend = FRAMEWORKS[cell.framework].keras_backend
    if backend:
        env["KERAS_BACKEND"] = backend
    if data_dir := opts.data_dir or os.environ.get("DLROSETTA_DATA"):
        env["DLROSETTA_DATA"] = str(Path(data_dir).expanduser().resolve())
    for sub in ("tmp", "cache/keras", "cache/inductor"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    return env


def base_row(cell: Cell, opts: RunOptions) -> dict:
    return {
        "schema": SCHEMA, "run_id": opts.run_id, "cell": cell.key, "task": cell.task,
        "framework": cell.framework, "variant": cell.variant, "device": cell.device,
        "profile": opts.profile, "dataset": cell.dataset, "mode": cell.mode, "init": opts.init,
        "params": dict(cell.params), "status": None, "error": None, "metrics": {}, "timing": {},
        "memory": {}, "onnx": None,
        "versions": environment.versions(FRAMEWORKS[cell.framework].packages),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def skip_reason(cell: Cell) -> tuple[str, str] | None:
    """(status, reason) for a cell that is not run, else None."""
    if reason := applicability(cell.task, cell.framework):
        return "not_applicable", reason
    if missing := missing_packages(cell.framework):
        return "unavailable", f"not installed in this environment: {', '.join(missing)}"
    if cell.device == "gpu" and not gpu_present():
        return "unavailable", "no GPU on this machine"
    return None


def run_cell(cell: Cell, opts: RunOptions, on_progress=None) -> dict:
    """Run one cell in a child process and return its finished row."""
    row = base_row(cell, opts)
    if skipped := skip_reason(cell):
        row["status"], row["error"] = skipped
        return row
    reduced = SECONDARY[opts.profile].get(TASKS[cell.task].kind, {}).get("spec", {}) if cell.secondary else {}
    spec = make_spec(cell.task, opts.profile, dataset=cell.dataset, mode=cell.mode, init=opts.init,
                     variant=cell.variant, device=cell.device, **{**reduced, **dict(cell.params)})
    row["secondary"] = cell.secondary
    row["spec"] = spec_to_dict(spec)
    cell_dir = opts.out / "cells" / cell.slug
    cell_dir.mkdir(parents=True, exist_ok=True)
    result_path = cell_dir / "result.json"
    for stale in (result_path, cell_dir / "progress.json"):
        stale.unlink(missing_ok=True)
    job = {"framework": cell.framework, "device": cell.device, "spec": row["spec"], "threads": opts.threads,
           "cell_dir": str(cell_dir.resolve()), "result_path": str(result_path.resolve()),
           "data_dir": opts.data_dir, "onnx": opts.onnx, "parity": opts.parity, "t_spawn": time.time()}
    (cell_dir / "job.json").write_text(json.dumps(job, indent=1))
    log_path = cell_dir / "log.txt"
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cell", str(cell_dir / "job.json")],
                                stdout=log, stderr=subprocess.STDOUT, env=cell_env(cell, opts),
                                start_new_session=True)  # its own process group: a timeout kills it all
        status, rusage, timed_out = _wait(proc, opts.timeout, cell_dir, on_progress, t0)
    wall = time.perf_counter() - t0
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    if result:
        for key in ("metrics", "timing", "memory", "onnx", "threads"):
            if key in result:
                row[key] = result[key] if result[key] is not None else row.get(key)
        row["status"], row["error"] = result["status"], result["error"]
    row.setdefault("timing", {})
    row["timing"]["cell_wall_s"] = wall
    row.setdefault("memory", {})["peak_rss_mb"] = rusage.ru_maxrss / 1024.0 if rusage else None
    if timed_out:
        row["status"], row["error"] = "timeout", f"timed out after {opts.timeout:g} s"
    elif os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        row["status"], row["error"] = "failed", f"killed by {sig}" + (
            " (out of memory?)" if sig == "SIGKILL" else "")
    elif result is None:
        row["status"] = "failed"
        row["error"] = f"exit code {os.WEXITSTATUS(status)}: {_last_line(log_path)}"
    elif row["status"] == "ok":
        row["status"], row["error"] = check_row(row)
    return row


def check_row(row: dict) -> tuple[str, str | None]:
    """A finished cell whose numbers are wrong is failed, with the reason."""
    m = row["metrics"]
    expected, count = m.get("param_count_expected"), m.get("param_count")
    if expected is not None and count is not None and expected != count:
        return "failed", f"parameter count {count:,} differs from the spec's {expected:,}"
    for key in ("test_loss", "test_mse", "x_final"):
        value = m.get(key)
        if value is not None and value != value:  # NaN
            return "failed", f"diverged: {key} is NaN"
    floor, start = m.get("closed_form_test_mse"), m.get("first_loss")
    if floor and start and m.get("test_mse") is not None and m["test_mse"] > max(DIVERGED_FACTOR * floor, start):
        return "failed", (f"diverged: test MSE {m['test_mse']:.4g} is worse than the untrained model's "
                          f"{start:.4g} (least squares: {floor:.4g})")
    return "ok", None


def _wait(proc, timeout, cell_dir, on_progress, t0):
    """Poll the child with wait4 (its own rusage), reporting progress and enforcing the timeout."""
    timed_out = False
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = status  # keep Popen from waiting on it again
            return status, rusage, timed_out
        elapsed = time.perf_counter() - t0
        if elapsed > timeout and not timed_out:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if on_progress:
            on_progress(elapsed, _read_progress(cell_dir))
        time.sleep(0.1)


def _read_progress(cell_dir: Path) -> dict | None:
    try:
        return json.loads((cell_dir / "progress.json").read_text())
    except (OSError, ValueError):
        return None


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return (lines[-1] if lines else "no output")[:300]


# --------------------------------------------------------------------------------------------------
# results.jsonl
# --------------------------------------------------------------------------------------------------
def append_row(path: Path, row: dict) -> None:
    line = json.dumps(row, default=str, allow_nan=True)
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_rows(path: Path) -> list[dict]:
    """Rows of a results file; a torn last line (a run killed mid-write) is ignored."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def completed_keys(path: Path) -> set[str]:
    """Cells finished in an earlier run of this dir (any status but unavailable is final)."""
    return {r["cell"] for r in read_rows(path) if r.get("status") not in (None, "unavailable")}
