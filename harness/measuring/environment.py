"""What the numbers were measured on: machine, OS, Python, package versions, commit, threads.

Versions come from package metadata (`importlib.metadata`), so nothing is imported to read them.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

PACKAGES = ("numpy", "torch", "lightning", "tensorflow", "tf-keras", "keras", "jax", "jaxlib", "flax", "optax", "dm-haiku",
            "onnx", "onnxruntime", "onnxscript", "tf2onnx", "jax2onnx", "scikit-learn", "pandas", "plotly")


def versions(packages=PACKAGES) -> dict:
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def git_commit(root: Path | None = None) -> str | None:
    root = root or Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip() or None
    return f"{commit}-dirty" if commit and dirty else commit


def roofline(threads: int) -> dict | None:
    """sgemm throughput measured in a child with the cells' thread settings."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    code = f"import json; from harness.measuring.measure import matmul_roofline; print(json.dumps(matmul_roofline({threads})))"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def gpu_name() -> str | None:
    """The first NVIDIA GPU's model from the driver's /proc files (no framework, no nvidia-smi call)."""
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            for line in info.read_text().splitlines():
                if line.startswith("Model:"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            continue
    return None


def cpu_bf16() -> list[str] | None:
    """The CPU's native bfloat16 instructions (/proc/cpuinfo flags: AVX512-BF16, AMX-BF16); [] when it has
    none (bf16 is then emulated, in float32 arithmetic plus conversions), None off Linux."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return sorted({f for f in flags if f in ("avx512_bf16", "amx_bf16")})


def host() -> dict:
    """The machine a row was measured on (kept in every row, so merged shards stay apart)."""
    return {"hostname": platform.node(), "cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu_name()}


def describe(threads: int, profile: str, device: str, with_roofline: bool = True) -> dict:
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "hostname": platform.node(),
        "gpu": gpu_name(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "git_commit": git_commit(),
        "threads": threads,
        "precision": "fp32",  # the run's --precision values (cmd_run)
        "cpu_bf16": cpu_bf16(),
        "profile": profile,
        "device": device,
        "versions": versions(),
        "roofline": roofline(threads) if with_roofline else None,
    }


def write(run_dir: Path, info: dict) -> dict:
    """Write environment.json, merging with what an earlier family's env wrote to the same run dir."""
    path = run_dir / "environment.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
        merged_versions = {**old.get("versions", {}), **info["versions"]}
        envs = old.get("environments", [])
        info = {**old, **{k: v for k, v in info.items() if v is not None}, "versions": merged_versions}
        info["run_id"] = old.get("run_id", info.get("run_id"))
        info["environments"] = envs
        # the roofline is a property of the CPU: keep the best measurement of the run (a busy moment
        # only lowers it), and every measurement in `rooflines`
        measured = [r for r in (old.get("roofline"), info.get("roofline")) if r]
        info["rooflines"] = old.get("rooflines", measured[:1]) + measured[1:]
        info["roofline"] = max(measured, key=lambda r: r.get("sgemm_gflops", 0), default=None)
    info.setdefault("environments", []).append(
        {"python": sys.executable, "versions": versions(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, path)
    return info
