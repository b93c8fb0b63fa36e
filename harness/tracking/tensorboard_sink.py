"""TensorBoard: event files per process under <out>/tensorboard/<cell slug>[/repeat-<r>], written with
the tensorboard package's own writers (no TensorFlow, no torch).

Each process is one TensorBoard run: `step/loss` and `step/time_s` over the global step, `epoch/*`
over the epoch, the `record.summary` numbers once, and its spec as hparams (the HParams dashboard),
so that `tensorboard --logdir <out>/tensorboard` overlays, e.g., the linear-regression modes in one chart.
A process whose folder already holds event files is not written again (--resume).
"""
from __future__ import annotations

from pathlib import Path

from harness.tracking import record


class Sink:
    def __init__(self, out: Path, uri: str | None = None):
        self.out = out
        self.root = out / "tensorboard"
        self.env: dict = {}

    def start(self, env: dict, earlier: list[dict]) -> None:
        self.env = env
        for row in earlier:
            self.log(row)

    def log(self, row: dict) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.plugins.hparams import summary_v2 as hp
        from tensorboard.summary import Writer
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        if not record.tracked(row):
            return
        logdir = self.root / record.name(row)
        if any(logdir.glob("events.out.tfevents.*")):
            return
        start = record.start_s(row)
        writer = Writer(str(logdir))
        for tag, points in record.series(row, self.out).items():
            for step, value, seconds in points:
                writer.add_scalar(tag, value, step, wall_time=start + seconds)
        for tag, value in record.summary(row).items():
            writer.add_scalar(tag, value, 0, wall_time=start)
        writer.close()
        # the hparams plugin's session record has no writer method of its own: one event in its own file
        session = hp.hparams_pb(record.params(row, self.env), trial_id=record.name(row), start_time_secs=start)
        events = EventFileWriter(str(logdir), filename_suffix=".hparams")
        events.add_event(event_pb2.Event(wall_time=start, summary=session))
        events.close()

    def close(self) -> None:
        pass
