"""What a run shows on the terminal: a live view of the matrix (rich, on a terminal) above one line per
finished cell; plain lines only when stderr is not a terminal (CI logs); `--quiet` for neither."""
from __future__ import annotations

import sys
import time
from collections import Counter

MARK = {"ok": "ok", "diverged": "DIVERGED", "failed": "FAILED", "timeout": "TIMEOUT", "not_applicable": "n/a",
        "unavailable": "unavail"}


def headline(row: dict) -> str:
    """The one number that says how the cell went."""
    m = row.get("metrics") or {}
    if row["status"] != "ok":
        return row.get("error") or ""
    if "test_accuracy" in m:
        return f"acc {m['test_accuracy'] * 100:.2f}%"
    if "test_mse" in m:
        return f"test mse {m['test_mse']:.4g} (closed form {m['closed_form_test_mse']:.4g})"
    if "x_final" in m:
        return f"x20 = {m['x_final']:.6g}"
    return ""


class Progress:
    """`live` (a terminal): a rich live view under the finished lines — done / running / left, the
    running cell's epoch, step and loss, and an ETA from the cells' estimated costs (`cost`, seconds;
    harness.matrix.shard's estimates). Otherwise one plain line per finished cell (CI logs stay readable) and a
    heartbeat a minute on long cells. `quiet`: no per-cell lines, only the header and the summary."""

    def __init__(self, total: int, live: bool, skipped: int = 0, stream=None, quiet: bool = False,
                 cost=None, console=None):
        self.total, self.live, self.skipped, self.quiet = total, live and not quiet, skipped, quiet
        self.stream = stream or sys.stderr
        self.cost = cost or (lambda cell: 1.0)
        self.index = 0
        self.t_run = time.perf_counter()
        self._last_heartbeat = 0.0
        self._view = self._start_view(console) if self.live else None

    def _start_view(self, console):
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RichProgress, SpinnerColumn, TextColumn, \
            TimeElapsedColumn, TimeRemainingColumn

        view = RichProgress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("ETA"),
                            TimeRemainingColumn(), console=console or Console(file=self.stream),
                            transient=True)
        self._matrix = view.add_task("matrix", total=None, counts="")
        self._running = view.add_task("", total=None, counts="", visible=False)
        self._estimated, self._spent = 0.0, 0.0
        view.start()
        return view

    def _print(self, text: str) -> None:
        if self._view is not None:
            self._view.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _refresh(self, running: str = "") -> None:
        """The live view's two lines: the matrix (bar in estimated seconds) and the running cell."""
        done = self.index - (1 if running else 0)
        counts = f"{done} done · {1 if running else 0} running · {self.total - self.index} left"
        self._view.update(self._matrix, description=f"dlrosetta [{self.index}/{self.total}]", counts=counts,
                          total=max(self._estimated, 1e-9), completed=self._spent)
        self._view.update(self._running, description=running, visible=bool(running))
        self._view.refresh()

    def header(self, out, env: dict) -> None:
        resumed = f", {self.skipped} already done" if self.skipped else ""
        self._print(f"dlrosetta: {self.total} processes{resumed} -> {out}/results.jsonl "
                    f"({env.get('cpu')}, {env.get('threads')} threads, profile {env.get('profile')})")

    def plan(self, cells) -> None:
        """The cells still to run, for the ETA (their summed estimated cost)."""
        if self._view is not None:
            self._estimated = sum(self.cost(c) for c in cells)
            self._refresh()

    def begin(self, cell, job=None) -> None:
        self.index += 1
        self.cell = cell
        self.label = cell.label
        if job is not None and (job.repeat or job.attempt):
            self.label += f" · repeat {job.repeat}" + (f" (re-run {job.attempt})" if job.attempt else "")
        self.t_cell = time.perf_counter()
        if self._view is not None:
            self._refresh(self.label)

    def extend(self, more: int, message: str) -> None:
        self.total += more
        self._print(f"dlrosetta: {message}")

    def update(self, elapsed: float, state: dict | None) -> None:
        detail = ""
        if state:
            if state.get("epochs"):
                detail = f"epoch {min(state['epoch'] + 1, state['epochs'])}/{state['epochs']}"
            if state.get("steps_per_epoch"):
                detail += f" step {state['step']}"
            if state.get("loss") is not None:
                detail += f" loss {state['loss']:.4g}"
        if self._view is not None:
            self._refresh(f"{self.label}  {detail}".rstrip())
        elif not self.quiet and elapsed - self._last_heartbeat > 60:  # logs (CI, tox): a heartbeat a minute
            self._last_heartbeat = elapsed
            if elapsed > 1:
                self._print(f"  ... [{self.index}/{self.total}] {self.label}  {elapsed:6.1f}s  {detail}")

    def end(self, cell, row: dict, where: str | None = None) -> None:
        self._last_heartbeat = 0.0
        took = time.perf_counter() - self.t_cell
        if self._view is not None:
            self._spent += self.cost(cell)
            self._estimated = max(self._estimated, self._spent)
            self._refresh()
        if self.quiet:
            return
        flag = (row.get("stability") or {}).get("flag")
        mark = f"  [{flag}: {'; '.join(row['stability']['reasons'])}]" if flag in ("disturbed", "unstable") else ""
        self._print(f"[{self.index}/{self.total}] {MARK.get(row['status'], row['status']):<7} {self.label}  "
                    f"{took:.1f}s  {headline(row)}{mark}" + (f"  [{where}]" if where else ""))

    def close(self) -> None:
        """Ends the live view (before the summary or an interruption note is printed)."""
        if self._view is not None:
            self._view.stop()
            self._view = None

    def interrupted(self, out, done: int, total: int, command: str, how: str = "Ctrl-C") -> None:
        self.close()
        self._print(f"\ninterrupted ({how}): {done} of {total} processes done, their rows are in "
                    f"{out}/results.jsonl; resume with: {command}")

    def summary(self, rows: list[dict], results) -> int:
        self.close()
        counts = Counter(r["status"] for r in rows)
        took = time.perf_counter() - self.t_run
        parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        self._print(f"dlrosetta: {len(rows)} processes in {took:.0f}s: {parts or 'nothing to do'} -> {results}")
        bad = [r for r in rows if r["status"] in ("failed", "timeout", "diverged")]
        for r in bad:
            self._print(f"  {r['status']}: {r['cell']}: {r['error']}")
        shaky = [r for r in rows if (r.get("stability") or {}).get("flag") in ("disturbed", "unstable")]
        if shaky:
            self._print(f"  warning: {len(shaky)} process(es) were timed while the machine was not quiet "
                        f"(disturbed or unstable): their times are not comparable; rerun on a quiet machine "
                        f"or with --rerun-disturbed K")
        return 1 if bad else 0
