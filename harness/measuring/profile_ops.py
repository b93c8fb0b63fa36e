"""`dlrosetta run --profile-ops`: each framework's own profiler around a few steady-state training steps.

The trace goes into the cell's folder (`ops_trace/`) in the profiler's own format, for its own viewer:
  torch   torch.profiler            trace.json (chrome://tracing, Perfetto)
  tf      tf.profiler.experimental  plugins/profile/<run>/<host>.xplane.pb (TensorBoard's profile plugin)
  jax     jax.profiler              plugins/profile/<run>/<host>.xplane.pb (TensorBoard / XProf, Perfetto)
and the operators that took the most time go into the row (`ops_profile.top`), named as the framework names
them: torch's aten ops (self CPU time), TF's op types (MatMul, Conv2D), XLA's fused HLO ops (dot, fusion).

The profiler starts after PROFILE_AFTER steps (compilation and warm-up are over) and runs for PROFILE_STEPS
steps. Starting and stopping it is outside every step's time, and the profiled steps themselves (slowed by
tracing) are left out of the steady-state step statistics (`Recorder.steady_steps`).
"""
from __future__ import annotations

import collections
import re
from pathlib import Path

PROFILE_AFTER = 10  # steps before tracing starts: step 1 compiles, the next few warm caches and pools
PROFILE_STEPS = 5  # steps traced: enough for every op of a step to show several times, a small trace file
TOP = 10  # operators kept in the row (the report shows five)

PROFILERS = {"torch": "torch.profiler", "tf": "tf.profiler.experimental", "jax": "jax.profiler"}
# Events of an XLA or TF executor that wait or dispatch rather than compute: left out of the op totals.
_BOOKKEEPING = ("ThreadpoolListener", "end: ", "Await", "wait for completion", "ThunkExecutor", "ExecutorState::",
                "ExecutorDoneCallback")


def _bookkeeping(name: str) -> bool:
    return any(word in name for word in _BOOKKEEPING)


class OpsProfiler:
    """Called by the Recorder after every step with the number of steps so far; returns "start" or "stop"
    on the steps where it switched the profiler, else None."""

    def __init__(self, family: str, out_dir: Path, total_steps: int | None, device: str = "cpu"):
        self.family, self.out_dir, self.device = family, Path(out_dir), device
        # a short run (a smoke profile's single epoch) is traced over its last steps instead
        self.start_at = PROFILE_AFTER if not total_steps else max(1, min(PROFILE_AFTER, total_steps - PROFILE_STEPS))
        self.stop_at = self.start_at + PROFILE_STEPS
        self.window: list[int] | None = None
        self._profiler = self._totals = None

    def __call__(self, steps: int) -> str | None:
        if steps == self.start_at and self._profiler is None and self.window is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._profiler = _START[self.family](self.out_dir, self.device)
            self.window = [steps + 1, steps]
            return "start"
        if steps == self.stop_at and self._profiler is not None:
            self._stop(steps)
            return "stop"
        return None

    def _stop(self, steps: int) -> None:
        self._totals = _STOP[self.family](self._profiler, self.out_dir)  # torch sums in memory, the others on disk
        self._profiler = None
        self.window[1] = steps

    def result(self, cell_dir: Path) -> dict:
        """The row's `ops_profile` block (stops a profiler that a short run left running)."""
        if self._profiler is not None:
            self._stop(self.window[0] - 1 + PROFILE_STEPS)  # fewer steps than planned: the run ended first
        if self.window is None:
            return {"status": "not_run", "profiler": PROFILERS[self.family],
                    "reason": f"the run ended before step {self.start_at}"}
        totals, calls = self._totals or _TOTALS[self.family](self.out_dir)
        steps = max(1, self.window[1] - self.window[0] + 1)
        whole = sum(totals.values()) or 1.0
        top = [{"op": name, "ms": round(ms, 4), "ms_per_step": round(ms / steps, 4), "share": round(ms / whole, 4),
                "calls": calls[name]} for name, ms in totals.most_common(TOP)]
        files = sorted(p for p in self.out_dir.rglob("*") if p.is_file())
        return {"status": "ok", "profiler": PROFILERS[self.family], "steps": self.window,
                "trace": [str(p.relative_to(cell_dir)) for p in files], "top": top,
                "ops_ms_total": round(whole, 4)}


def family_of(framework: str) -> str | None:
    """The profiler a column's cells use: its framework family's (Keras: its backend's); None for numpy."""
    from harness.matrix.registry import FRAMEWORKS

    fw = FRAMEWORKS[framework]
    family = {"tensorflow": "tf", "jax": "jax", "torch": "torch"}.get(fw.keras_backend or "", fw.family)
    return family if family in PROFILERS else None


# -- torch ----------------------------------------------------------------------------------------
def _torch_start(out_dir: Path, device: str):
    import torch

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "gpu":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    profiler = torch.profiler.profile(activities=activities)
    profiler.start()
    return profiler


def _torch_stop(profiler, out_dir: Path) -> None:
    profiler.stop()
    profiler.export_chrome_trace(str(out_dir / "trace.json"))
    # self time per op (time inside the op minus its children), so nested ops are not counted twice
    totals, calls = collections.Counter(), collections.Counter()
    for event in profiler.key_averages():
        self_us = event.self_cpu_time_total + getattr(event, "self_device_time_total", 0.0)
        if self_us > 0:
            totals[event.key] += self_us / 1000.0
            calls[event.key] += event.count
    return totals, calls


# -- TensorFlow -------------------------------------------------------------------------------------
def _tf_start(out_dir: Path, device: str):
    import tensorflow as tf

    tf.profiler.experimental.start(str(out_dir))
    return True


def _tf_stop(profiler, out_dir: Path) -> None:
    import tensorflow as tf

    tf.profiler.experimental.stop()  # writes the trace; its totals are read back from it


def _tf_totals(out_dir: Path):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    def events():
        for path in out_dir.rglob("*.xplane.pb"):
            space = xplane_pb2.XSpace()
            space.ParseFromString(path.read_bytes())
            for plane in space.planes:
                for line in plane.lines:
                    for event in line.events:
                        name = plane.event_metadata[event.metadata_id].name
                        if ":" in name and line.name != "python" and not _bookkeeping(name):  # "scope/name:OpType"
                            yield name.rsplit(":", 1)[1], event.duration_ps / 1e9
    return _sum(events())


# -- JAX ----------------------------------------------------------------------------------------------
def _jax_start(out_dir: Path, device: str):
    import jax

    jax.profiler.start_trace(str(out_dir))
    return True


def _jax_stop(profiler, out_dir: Path) -> None:
    import jax

    jax.profiler.stop_trace()


def _jax_totals(out_dir: Path):
    from jax.profiler import ProfileData

    def events():
        for path in out_dir.rglob("*.xplane.pb"):
            for plane in ProfileData.from_file(str(path)).planes:
                for line in plane.lines:
                    if line.name == "python":  # the Python side: dispatch, not the compiled program
                        continue
                    for event in line.events:
                        yield event.name, event.duration_ns / 1e6
    return _sum(events())


def _sum(events):
    totals, calls = collections.Counter(), collections.Counter()
    for name, ms in events:
        if not _bookkeeping(name):
            name = re.sub(r"\.\d+$", "", name)  # XLA numbers its instructions: fusion.3 and fusion.7 are one op
            totals[name] += ms
            calls[name] += 1
    return totals, calls


_START = {"torch": _torch_start, "tf": _tf_start, "jax": _jax_start}
_STOP = {"torch": _torch_stop, "tf": _tf_stop, "jax": _jax_stop}
_TOTALS = {"tf": _tf_totals, "jax": _jax_totals}
