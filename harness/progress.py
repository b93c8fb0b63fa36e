"""What a run shows on the terminal: a live line per cell (on a TTY) and one line per finished cell."""
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
    def __init__(self, total: int, live: bool, skipped: int = 0, stream=None):
        self.total, self.live, self.skipped = total, live, skipped
        self.stream = stream or sys.stderr
        self.index = 0
        self.t_run = time.perf_counter()
        self._last_heartbeat = 0.0

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def header(self, out, env: dict) -> None:
        resumed = f", {self.skipped} already done" if self.skipped else ""
        self._print(f"dlrosetta: {self.total} processes{resumed} -> {out}/results.jsonl "
                    f"({env.get('cpu')}, {env.get('threads')} threads, profile {env.get('profile')})")

    def begin(self, cell, job=None) -> None:
        self.index += 1
        self.cell = cell
        self.label = cell.label
        if job is not None and (job.repeat or job.attempt):
            self.label += f" · repeat {job.repeat}" + (f" (re-run {job.attempt})" if job.attempt else "")
        self.t_cell = time.perf_counter()

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
        line = f"[{self.index}/{self.total}] {self.label}  {elapsed:6.1f}s  {detail}"
        if self.live:
            self.stream.write("\r\033[K" + line[:150])
            self.stream.flush()
        elif elapsed - self._last_heartbeat > 60:  # logs (CI, tox): a heartbeat a minute on long cells
            self._last_heartbeat = elapsed
            if elapsed > 1:
                self._print(f"  ... {line}")

    def end(self, cell, row: dict, where: str | None = None) -> None:
        self._last_heartbeat = 0.0
        if self.live:
            self.stream.write("\r\033[K")
        took = time.perf_counter() - self.t_cell
        flag = (row.get("stability") or {}).get("flag")
        mark = f"  [{flag}: {'; '.join(row['stability']['reasons'])}]" if flag in ("disturbed", "unstable") else ""
        self._print(f"[{self.index}/{self.total}] {MARK.get(row['status'], row['status']):<7} {self.label}  "
                    f"{took:.1f}s  {headline(row)}{mark}" + (f"  [{where}]" if where else ""))

    def interrupted(self, out, done: int, total: int, command: str, how: str = "Ctrl-C") -> None:
        if self.live:
            self.stream.write("\r\033[K")
        self._print(f"\ninterrupted ({how}): {done} of {total} processes done, their rows are in "
                    f"{out}/results.jsonl; resume with: {command}")

    def summary(self, rows: list[dict], results) -> int:
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
