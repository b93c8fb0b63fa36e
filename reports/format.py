"""Number formatting (the templates' filters) and the downloadable table model."""
from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field

import pandas as pd

from reports.data import number


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def clean(text) -> str:
    """An error line as text: terminal colour codes and control characters removed (escaping is
    the template's job)."""
    return ANSI.sub("", str(text)) if text is not None else ""


def fmt_num(value, sig: int = 3) -> str:
    v = number(value)
    if v is None:
        return "–"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 10 ** sig:
        return f"{v:,.0f}"
    if a < 1e-3:
        return f"{v:.{max(sig - 1, 1)}e}"
    digits = max(sig - 1 - int(math.floor(math.log10(a))), 0)
    return f"{v:.{digits}f}"


# kinds that format a number, or show a dash where there is none
NUMBER_FORMATS = {
    "pct": lambda v: f"{100 * v:.1f} %",
    "pct2": lambda v: f"{100 * v:.2f} %",
    "pp": lambda v: f"{100 * v:+.2f} pp",
    "sci": lambda v: "0" if v == 0 else f"{v:.2e}",
    "short": lambda v: f"{v:g}",  # 1e-08 rather than 1.00e-08
    "ratio": lambda v: f"×{v:.2f}",
}


def fmt_value(value, kind: str = "text") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind in NUMBER_FORMATS:
        v = number(value)
        return "–" if v is None else NUMBER_FORMATS[kind](v)
    if kind == "int":
        return f"{int(value):,}" if number(value) is not None else str(value)
    if kind == "num":
        return fmt_num(value, 4)
    if kind in ("ms", "s", "mb", "g"):
        return fmt_num(value, 3)
    if kind == "bool":
        return "yes" if value is True else ("no" if value is False else str(value))
    return str(value)


@dataclass
class Col:
    key: str
    label: str
    kind: str = "text"
    title: str = ""  # header tooltip


@dataclass
class Table:
    id: str
    columns: list[Col]
    rows: list[dict]
    csv_name: str
    note: str = ""
    title: str = ""
    numeric: set = field(default_factory=set)

    @property
    def csv_href(self) -> str:
        df = pd.DataFrame([{c.label: r.get(c.key) for c in self.columns} for r in self.rows],
                          columns=[c.label for c in self.columns])
        data = df.to_csv(index=False).encode()
        return "data:text/csv;charset=utf-8;base64," + base64.b64encode(data).decode()


def csv_href_frame(df: pd.DataFrame) -> str:
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(df.to_csv(index=False).encode()).decode()


_table_ids = iter(range(1, 10**6))


def table(columns, rows, csv_name, note="", title="") -> Table | None:
    if not rows:
        return None
    return Table(f"table-{next(_table_ids)}", columns, rows, csv_name, note, title)


def fmt_ms(seconds) -> str:
    v = number(seconds)
    if v is None:
        return "–"
    if v < 1e-3:
        return f"{fmt_num(v * 1e6)} µs"
    return f"{fmt_num(v * 1e3)} ms"


def ms(seconds):
    """Seconds -> milliseconds, None stays None."""
    v = number(seconds)
    return None if v is None else v * 1e3
