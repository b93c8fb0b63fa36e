"""Tracking sinks: `dlrosetta run --track mlflow,tensorboard`.

The harness parent feeds every finished row (and the process's steps.json) to each chosen sink, after
the process has ended and before the next one starts, so logging never overlaps a measurement. The
sinks import their package (mlflow, tensorboard) lazily and never import a framework.

    tracker = open_sinks(["mlflow"], out, env_info, uri)   # bad names, missing packages: TrackingError
    tracker.start(env_info)   # also logs the rows already in out/results.jsonl that a sink lacks (--resume)
    tracker.log(row)          # once per finished process
    tracker.close()
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from harness.checks.onnx_parity import one_line
from harness.running.runner import read_rows

# sink name -> (its module in this package, the package it needs)
SINKS = {"mlflow": ("mlflow_sink", "mlflow"), "tensorboard": ("tensorboard_sink", "tensorboard")}
EXTRA = "track"


class TrackingError(Exception):
    """A --track choice that cannot work here (one line; the CLI exits 2 with it)."""


class Tracker:
    """Fans every call out to the sinks. A sink that fails mid-run is reported once and dropped: the
    run goes on, and the rows stay in results.jsonl for a later `--resume --track NAME`."""

    def __init__(self, sinks: dict, out: Path, env_info: dict):
        self.sinks, self.out, self.env_info = sinks, Path(out), env_info

    def start(self, env_info: dict) -> None:
        self.env_info = env_info
        earlier = read_rows(self.out / "results.jsonl")
        for name in list(self.sinks):
            self._call(name, "start", env_info, earlier)

    def log(self, row: dict) -> None:
        for name in list(self.sinks):
            self._call(name, "log", row)

    def close(self) -> None:
        for name in list(self.sinks):
            self._call(name, "close")

    def _call(self, name: str, method: str, *args) -> None:
        try:
            getattr(self.sinks[name], method)(*args)
        except Exception as exc:  # noqa: BLE001 - tracking must never cost a benchmark its rows
            del self.sinks[name]
            print(f"dlrosetta: tracking with {name} stopped ({one_line(exc)}); every row stays in "
                  f"results.jsonl, and `--resume --track {name}` logs the missing ones", file=sys.stderr)


def open_sinks(names, out: Path, env_info: dict, uri: str | None = None) -> Tracker:
    """The sinks named, each checked before anything runs: unknown name or missing package -> TrackingError."""
    sinks = {}
    for name in dict.fromkeys(names):
        if name not in SINKS:
            raise TrackingError(f"unknown tracking sink {name!r}; choose from {', '.join(SINKS)}")
        module, package = SINKS[name]
        try:
            importlib.import_module(package)
        except ImportError:
            raise TrackingError(f"--track {name} needs the '{EXTRA}' extra: pip install 'dlrosetta[{EXTRA}]'") \
                from None
        try:
            sinks[name] = importlib.import_module(f"{__name__}.{module}").Sink(Path(out), uri)
        except Exception as exc:  # noqa: BLE001 - a bad --tracking-uri and the like: one line, exit 2
            raise TrackingError(f"--track {name}: {one_line(exc)}") from None
    return Tracker(sinks, Path(out), env_info)
