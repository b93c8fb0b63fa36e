"""Runs cells, each in its own process, and appends one result row per finished cell.

Each cell's child gets a clean environment (fixed thread count, caches under the run dir), a
timeout, and its peak RSS read from ``os.wait4`` on that child alone. A row is appended to
``results.jsonl`` (flush + fsync) the moment its cell ends, so an interrupted run loses nothing and
``--resume`` picks up where it stopped.
"""
from __future__ import annotations

import errno
import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from harness.matrix.registry import FRAMEWORKS, Cell, applicability, gpu_present, missing_packages
from harness.matrix.tasks import REPEAT_STEPS, SECONDARY, TASKS, make_spec, spec_to_dict
from harness.measuring import environment, stability

SCHEMA = 1
# --max-memory default: this share of the machine's memory for one cell (one cell runs at a time, and
# the parent, the OS and the page cache need the rest)
DEFAULT_MEMORY_SHARE = 0.5
# the child's address-space limit (setrlimit RLIMIT_AS) is this many times --max-memory: a backstop that
# makes one huge allocation fail at once; resident memory itself is watched against the limit by the parent
# (frameworks reserve more address space than they touch: 0.7-2 GB for torch, TF and JAX at import)
ADDRESS_SPACE_FACTOR = 2.0
MEMORY_POLL_S = 0.3
POLL_S = 0.1  # progress, timeout and memory checks of a running cell
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
    deploy: bool = True  # the deployment export round trip (torch.export, SavedModel, jax.export), MNIST only
    run_id: str = ""
    parity: bool = False  # record per-step losses and initial outputs (`dlrosetta parity`)
    profile_ops: bool = False  # each framework's profiler over a few steady-state steps (`--profile-ops`)
    max_memory_gb: float | None = None  # resident memory limit per cell; None: DEFAULT_MEMORY_SHARE of RAM


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (a container or taskset may allow fewer than os.cpu_count())."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def default_max_memory_gb() -> float:
    total = environment.memory_gb()
    return round(DEFAULT_MEMORY_SHARE * total, 1) if total else 8.0


@dataclass(frozen=True)
class Job:
    """One process of a cell: repeat 0 is the full run, repeats 1.. are timing-only; attempt > 0 is a
    re-run of a disturbed process (`--rerun-disturbed`)."""
    cell: Cell
    repeat: int = 0
    attempt: int = 0
    schedule: dict | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.cell.key, self.repeat

    @property
    def dir(self) -> str:
        """The process's folder, relative to the run dir."""
        if self.repeat == 0 and self.attempt == 0:
            return f"cells/{self.cell.slug}"
        return f"cells/{self.cell.slug}/repeat-{self.repeat}" + (f"-attempt-{self.attempt}" if self.attempt else "")


def cell_env(cell: Cell, opts: RunOptions, cell_dir: Path | None = None) -> dict:
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
    if cell_dir is not None:  # where a framework's own logger (TensorBoard, MLflow) may write
        env["DLROSETTA_CELL_DIR"] = str(Path(cell_dir).resolve())
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
        "host": environment.host(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def skip_reason(cell: Cell) -> tuple[str, str] | None:
    """(status, reason) for a cell that is not run, else None."""
    if reason := applicability(cell.task, cell.framework, cell.variant, cell.params):
        return "not_applicable", reason
    if missing := missing_packages(cell.framework):
        return "unavailable", f"not installed in this environment: {', '.join(missing)}"
    if cell.device == "gpu" and not gpu_present():
        return "unavailable", "no GPU on this machine"
    return None


def job_spec(job: Job, opts: RunOptions):
    """The spec a process trains: the cell's, and for a timing-only repeat a fixed short schedule (one
    epoch of at most REPEAT_STEPS steps, no target) — the steady-state step time is what it measures."""
    cell = job.cell
    kind = TASKS[cell.task].kind
    reduced = SECONDARY[opts.profile].get(kind, {}).get("spec", {}) if cell.short_schedule else {}
    spec = make_spec(cell.task, opts.profile, dataset=cell.dataset, mode=cell.mode, init=opts.init,
                     variant=cell.variant, device=cell.device, **{**reduced, **dict(cell.params)})
    if job.repeat and kind == "mnist":
        rows = min(spec.train_subset or 60000, REPEAT_STEPS * spec.batch_size)
        spec = replace(spec, epochs=1, train_subset=rows, target_accuracy=None, stop_at_target=False)
    return spec


def run_cell(cell: Cell, opts: RunOptions, on_progress=None, job: Job | None = None, on_spawn=None) -> dict:
    """Run one process of a cell in a child and return its finished row."""
    job = job or Job(cell)
    row = base_row(cell, opts)
    row.update(repeat=job.repeat, attempt=job.attempt, schedule=job.schedule, dir=job.dir, stability=None)
    if job.repeat:
        row["timing_only"] = True
    if skipped := skip_reason(cell):
        row["status"], row["error"] = skipped
        return row
    spec = job_spec(job, opts)
    row["secondary"] = cell.secondary
    row["spec"] = spec_to_dict(spec)
    cell_dir = opts.out / job.dir
    cell_dir.mkdir(parents=True, exist_ok=True)
    result_path = cell_dir / "result.json"
    for stale in (result_path, cell_dir / "progress.json", cell_dir / "steps.json"):
        stale.unlink(missing_ok=True)
    limit_gb = opts.max_memory_gb or default_max_memory_gb()
    payload = {"framework": cell.framework, "device": cell.device, "spec": row["spec"], "threads": opts.threads,
               "cell_dir": str(cell_dir.resolve()), "result_path": str(result_path.resolve()),
               "data_dir": opts.data_dir, "onnx": opts.onnx and not job.repeat, "deploy": opts.deploy and not job.repeat,
               "parity": opts.parity,
               "profile_ops": opts.profile_ops, "timing_only": bool(job.repeat), "repeat": job.repeat, "t_spawn": time.time()}
    (cell_dir / "job.json").write_text(json.dumps(payload, indent=1))
    log_path = cell_dir / "log.txt"
    cpus = allowed_cpus()[:opts.threads]
    before = stability.machine_cpu()
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.running.cell", str(cell_dir / "job.json")],
                                stdout=log, stderr=subprocess.STDOUT, env=cell_env(cell, opts, cell_dir),
                                preexec_fn=_limits(cpus, limit_gb if cell.device == "cpu" else None),
                                start_new_session=True)  # its own process group: a timeout kills it all
        if on_spawn:
            on_spawn(proc)
        status, rusage, timed_out, oom = _wait(proc, opts.timeout, cell_dir, on_progress, t0, limit_gb)
    wall = time.perf_counter() - t0
    after = stability.machine_cpu()
    result = _read_json(result_path)
    if result:
        for key in ("metrics", "timing", "memory", "onnx", "deploy", "precision", "threads", "stability", "divergence", "ops_profile"):
            if key in result:
                row[key] = result[key] if result[key] is not None else row.get(key)
        row["status"], row["error"] = result.get("status"), result.get("error")
    row.setdefault("timing", {})
    row["timing"]["cell_wall_s"] = wall
    peak_mb = rusage.ru_maxrss / 1024.0 if rusage else None
    row.setdefault("memory", {})["peak_rss_mb"] = peak_mb
    row["memory"]["limit_gb"] = limit_gb
    if row.get("stability") is not None:
        row["stability"] = _with_process_level(row["stability"], before, after, rusage, wall)
    error_text = row.get("error") or ""
    if timed_out:
        row["status"], row["error"] = "timeout", f"timed out after {opts.timeout:g} s"
    elif oom or error_text.startswith("MemoryError") or (
            os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL and peak_mb
            and peak_mb >= 0.9 * limit_gb * 1024):
        row["status"] = "failed"
        row["error"] = f"out of memory (limit {limit_gb:g} GB, peak {(peak_mb or 0) / 1024:.2f} GB)"
    elif os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        row["status"], row["error"] = "failed", f"killed by {sig}" + (
            " (out of memory?)" if sig == "SIGKILL" else "")
    elif result is None:
        row["status"] = "failed"
        row["error"] = f"exit code {os.WEXITSTATUS(status)}: {_last_line(log_path)}"
    elif row["status"] == "ok":
        row["status"], row["error"], divergence = check_row(row)
        if divergence:
            row["divergence"] = divergence
    if row["status"] not in ("ok", "diverged"):
        row["stability"] = None
    return row


def _limits(cpus: list[int], limit_gb: float | None):
    """preexec_fn of a cell's child: pin it to `cpus` (--threads cores; every framework's thread pool
    runs inside the affinity mask, which XLA's CPU client does not get from any thread variable) and cap
    its address space as a backstop of the memory limit."""
    def apply():
        _die_with_parent()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)
        if limit_gb:
            cap = int(limit_gb * ADDRESS_SPACE_FACTOR * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return apply


def _die_with_parent() -> None:
    """Linux: the child is killed when the process that started it dies (a Ray worker or a driver
    killed with -9 leaves no cell running)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _with_process_level(block: dict, before, after, rusage, wall: float) -> dict:
    """Add the whole process's view (spawn to exit, measured by the parent with the child's own rusage
    from wait4); a timed phase too short to judge is judged on it instead."""
    own = (rusage.ru_utime + rusage.ru_stime) if rusage else 0.0
    process = stability.window(stability.Snapshot(0.0, *before, 0.0), stability.Snapshot(wall, *after, own))
    if rusage is None:
        process.update(cpu_per_wall=None, others_cpu=None, steal=None)
    block = dict(block)
    block["process"] = process
    block["basis"] = "timed phase"
    if (block.get("window_s") or 0) < stability.MIN_WINDOW_S:
        steps = block.get("n_steps") or 0
        rejudged = stability.judge({**process, "window_s": wall}, [])
        rejudged.update(step_cv=block.get("step_cv"), n_steps=steps, process=process, basis="whole process",
                        timed_window_s=block.get("window_s"), probe_gflops=block.get("probe_gflops"))
        block = rejudged
    return block


def check_row(row: dict) -> tuple[str, str | None, dict | None]:
    """A finished cell whose numbers are wrong is failed (or diverged), with the reason."""
    m = row["metrics"]
    expected, count = m.get("param_count_expected"), m.get("param_count")
    if expected is not None and count is not None and expected != count:
        return "failed", f"parameter count {count:,} differs from the spec's {expected:,}", None
    for key in ("test_loss", "test_mse", "x_final"):
        value = m.get(key)
        if value is not None and value != value:  # NaN
            return "diverged", f"diverged: {key} is NaN", {"reason": f"{key} is NaN", "step": None, "epoch": None,
                                                           "loss": None, "first_loss": m.get("first_loss")}
    floor, start = m.get("closed_form_test_mse"), m.get("first_loss")
    if floor and start and m.get("test_mse") is not None and m["test_mse"] > max(DIVERGED_FACTOR * floor, start):
        reason = (f"test MSE {m['test_mse']:.4g} is worse than the untrained model's {start:.4g} "
                  f"(least squares: {floor:.4g})")
        return "diverged", f"diverged: {reason}", {"reason": reason, "step": None,
                                                   "epoch": len(m.get("loss_curve") or []) or None,
                                                   "loss": m["test_mse"], "first_loss": start}
    return "ok", None, None


def _wait(proc, timeout, cell_dir, on_progress, t0, limit_gb):
    """Poll the child with wait4 (its own rusage), reporting progress and enforcing the timeout and the
    memory limit (resident memory of the child's whole process group). Whatever ends the wait early
    (Ctrl-C, SIGTERM, an error) kills the child's process group first: no cell outlives the run."""
    timed_out = oom = False
    limit_bytes = limit_gb * 2**30 if limit_gb else None
    next_memory_check = 0.0
    exited = _exit_signal(proc.pid)
    try:
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                proc.returncode = status  # keep Popen from waiting on it again
                return status, rusage, timed_out, oom
            elapsed = time.perf_counter() - t0
            if elapsed > timeout and not timed_out:
                timed_out = True
                kill_group(proc.pid)
            if limit_bytes and elapsed >= next_memory_check and not oom:
                next_memory_check = elapsed + MEMORY_POLL_S
                if group_rss_bytes(proc.pid) > limit_bytes:
                    oom = True
                    kill_group(proc.pid)
            if on_progress:
                on_progress(elapsed, _read_progress(cell_dir))
            if exited is None:
                time.sleep(POLL_S)
            else:
                select.select([exited], [], [], POLL_S)
    except BaseException:
        kill_group(proc.pid)
        try:
            os.waitpid(proc.pid, 0)
            proc.returncode = -9
        except ChildProcessError:
            pass
        raise
    finally:
        if exited is not None:
            os.close(exited)


def _exit_signal(pid: int) -> int | None:
    """A pidfd of the child (Linux 5.3+), readable the moment it exits, so the wait between polls ends then:
    a plain sleep adds half a poll (0.05 s) to every process's wall time on average. None elsewhere."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in a process group, from /proc (0 where /proc is missing)."""
    total, page = 0, os.sysconf("SC_PAGE_SIZE")
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    return total


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


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
class OutputError(OSError):
    """results.jsonl could not be written (ENOSPC, EIO, permissions): the run stops, exit 1."""


def append_row(path: Path, row: dict) -> None:
    """Append one row as one line, flushed and fsynced. A write that fails part-way (a full disk) is
    rolled back to the previous end of the file, so results.jsonl never holds a torn row."""
    data = (json.dumps(row, default=str, allow_nan=True) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError(errno.EIO, "short write")
                view = view[written:]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise OutputError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


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


def completed_keys(path: Path) -> set[tuple[str, int]]:
    """(cell, repeat) processes finished in an earlier run of this dir (any status but unavailable is
    final); rows written before repeats existed are repeat 0."""
    return {(r["cell"], r.get("repeat") or 0) for r in read_rows(path)
            if isinstance(r, dict) and "cell" in r and r.get("status") not in (None, "unavailable")}
