"""Plotly figures for the report: one colour per framework, one dash / bar pattern per variant.

Figures are built with plotly.graph_objects (validated) and embedded as JSON; the page draws them
with the plotly.js that ships inside the plotly package, inlined once. Every label that comes from
a result is HTML-escaped first, because Plotly renders its text as a small subset of HTML.
"""
from __future__ import annotations

import html
import itertools
import math
from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio

from reports.data import get, number, series_label, variant_order

FONT = ("-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, "
        "'Noto Sans', 'Liberation Sans', sans-serif")
COLORS = {  # Okabe-Ito based: distinguishable, colour-blind safe for the common pairs
    "numpy": "#0072B2", "pytorch": "#D55E00", "lightning": "#8E44AD", "tf1": "#B07A00",
    "tf2": "#E69F00", "keras-tensorflow": "#009E73", "keras-jax": "#56B4E9", "keras-torch": "#CC79A7",
    "jax": "#3B4B5C", "flax": "#8C564B",
}
EXTRA_COLORS = ("#1B9E77", "#7570B3", "#E7298A", "#66A61E", "#A6761D", "#666666")
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
PATTERNS = ("", "/", ".", "x", "\\", "+", "-", "|")
METRIC_COLORS = ("#2B6CB0", "#DD6B20", "#38A169", "#805AD5")
EMPTY_TEMPLATE = go.layout.Template()
_ids = itertools.count(1)


@dataclass
class Chart:
    id: str
    title: str
    json: str  # the figure, JSON with <, >, & escaped (safe inside <script type="application/json">)
    height: int
    note: str = ""
    wide: bool = False


def esc(text) -> str:
    return html.escape(str(text), quote=False)


def color(framework: str) -> str:
    if framework in COLORS:
        return COLORS[framework]
    return EXTRA_COLORS[sum(map(ord, str(framework))) % len(EXTRA_COLORS)]


def variant_index(row: dict) -> int:
    return variant_order(row.get("task"), row.get("framework"), row.get("variant"))


def layout(title: str, xtitle: str = "", ytitle: str = "", height: int = 320, **extra) -> dict:
    axis = dict(gridcolor="#E5E7EB", linecolor="#9CA3AF", zerolinecolor="#D1D5DB", automargin=True,
                ticks="outside", tickcolor="#9CA3AF", title_font=dict(size=12, color="#4B5563"))
    out = dict(
        template=EMPTY_TEMPLATE, height=height, autosize=True,
        # the title is the figure's HTML heading (same typography as the page); kept here for PNG export
        title=dict(text=""),
        font=dict(family=FONT, size=12, color="#1F2933"),
        paper_bgcolor="#FFFFFF", plot_bgcolor="#FFFFFF",
        margin=dict(l=8, r=16, t=8, b=8),
        xaxis=dict(axis, title=dict(text=esc(xtitle))), yaxis=dict(axis, title=dict(text=esc(ytitle))),
        legend=dict(orientation="h", x=0, xanchor="left", y=1.0, yanchor="bottom", font=dict(size=11),
                    groupclick="togglegroup", bgcolor="rgba(255,255,255,0)"),
        hoverlabel=dict(font=dict(family=FONT, size=12)), hovermode="closest",
        colorway=list(METRIC_COLORS),
    )
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def make(title: str, traces: list, lay: dict, note: str = "", wide: bool = False) -> Chart:
    fig = go.Figure(data=traces, layout=lay)
    text = pio.to_json(fig, validate=True, pretty=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Chart(id=f"chart-{next(_ids)}", title=title, json=text, height=int(lay.get("height", 320)),
                 note=note, wide=wide)


def _bar_height(n: int) -> int:
    return max(200, 96 + 26 * n)


# --------------------------------------------------------------------------------------------------
def bars(rows: list[dict], value, title: str, unit: str, err=None, label=series_label, note: str = "",
         log: bool = False, digits: str = ".3g", span=None) -> Chart | None:
    """One horizontal bar per row (framework colour, variant pattern); legend = frameworks (toggle).
    Whisker: ±err/2 around the bar, or, where `span(row)` gives (low, high), from low to high."""
    points = [(r, number(value(r))) for r in rows]
    points = [(r, v) for r, v in points if v is not None]
    if not points:
        return None
    traces, shown = [], set()
    for r, v in points:
        fw = r.get("framework")
        e = number(err(r)) if err else None
        lo, hi = span(r) if span else (None, None)
        lo, hi = number(lo), number(hi)
        whisker = (hi - v, v - lo) if lo is not None and hi is not None else (e / 2, min(e / 2, v)) if e else None
        name = esc(label(r))
        traces.append(go.Bar(
            y=[name], x=[v], orientation="h", name=esc(fw), legendgroup=esc(fw), showlegend=fw not in shown,
            marker=dict(color=color(fw), pattern=dict(shape=PATTERNS[variant_index(r) % len(PATTERNS)],
                                                       fillmode="overlay", fgcolor="rgba(255,255,255,0.8)",
                                                       size=7, solidity=0.25)),
            error_x=dict(type="data", array=[whisker[0]], arrayminus=[whisker[1]], symmetric=False,
                         color="#374151", thickness=1.2, width=4) if whisker else None,
            hovertemplate=f"<b>{name}</b><br>%{{x:{digits}}} {esc(unit)}"
                          + (f"<br>processes {lo:{digits}}–{hi:{digits}} {esc(unit)}" if lo is not None and hi is not None
                             else f"<br>IQR {e:{digits}} {esc(unit)}" if e else "") + "<extra></extra>",
        ))
        shown.add(fw)
    lay = layout(title, xtitle=unit, height=_bar_height(len(points)), barmode="overlay", bargap=0.25,
                 yaxis=dict(autorange="reversed", type="category", gridcolor="rgba(0,0,0,0)"),
                 xaxis=dict(type="log" if log else "linear", rangemode="tozero"))
    return make(title, traces, lay, note)


def grouped_bars(rows: list[dict], metrics: list[tuple[str, object]], title: str, unit: str,
                 label=series_label, note: str = "", log: bool = False) -> Chart | None:
    """Several measures per row as grouped bars; legend = the measures (toggle)."""
    labels = [esc(label(r)) for r in rows]
    traces = []
    for i, (name, fn) in enumerate(metrics):
        values = [number(fn(r)) for r in rows]
        if all(v is None for v in values):
            continue
        traces.append(go.Bar(y=labels, x=values, orientation="h", name=esc(name),
                             marker=dict(color=METRIC_COLORS[i % len(METRIC_COLORS)]),
                             hovertemplate=f"<b>%{{y}}</b><br>{esc(name)}: %{{x:.3g}} {esc(unit)}<extra></extra>"))
    if not traces:
        return None
    lay = layout(title, xtitle=unit, height=_bar_height(len(rows) * max(1, len(traces)) * 0.62 + 2),
                 barmode="group", bargap=0.22, bargroupgap=0.05,
                 yaxis=dict(autorange="reversed", type="category", gridcolor="rgba(0,0,0,0)"),
                 xaxis=dict(type="log" if log else "linear"))
    return make(title, traces, lay, note)


def curves(rows: list[dict], curve, title: str, ytitle: str, xtitle: str = "epoch", label=series_label,
           log: bool = False, start: int = 1, extra: list | None = None, note: str = "",
           percent: bool = False, wide: bool = False, ytickformat: str = "") -> Chart | None:
    """One line per row (framework colour, variant dash); legend = the rows (toggle each)."""
    traces = []
    for r in rows:
        ys = curve(r)
        if not ys:
            continue
        ys = [number(y) for y in ys]
        if percent:
            ys = [None if y is None else 100 * y for y in ys]
        fw = r.get("framework")
        name = esc(label(r))
        traces.append(go.Scatter(
            x=list(range(start, start + len(ys))), y=ys, name=name, legendgroup=name,
            mode="lines+markers" if len(ys) <= 30 else "lines",
            line=dict(color=color(fw), dash=DASHES[variant_index(r) % len(DASHES)], width=2),
            marker=dict(size=6), hovertemplate=f"<b>{name}</b><br>{esc(xtitle)} %{{x}}: %{{y:.5g}}<extra></extra>"))
    if not traces:
        return None
    traces += extra or []
    lay = layout(title, xtitle=xtitle, ytitle=ytitle, height=340,
                 yaxis=dict(type="log" if log else "linear", exponentformat="power" if log else "none",
                            tickformat=ytickformat),
                 xaxis=dict(rangemode="nonnegative"))
    return make(title, traces, lay, note, wide=wide)


def sweep(series: dict[str, list[tuple[float, float, dict]]], title: str, xtitle: str, ytitle: str,
          note: str = "", log_x: bool = False) -> Chart | None:
    """series: label -> [(x, y, row)]: one line per framework/variant across the swept values."""
    traces = []
    for name, points in series.items():
        points = sorted(((x, y, r) for x, y, r in points if x is not None and y is not None), key=lambda p: p[:2])
        if not points:
            continue
        r = points[0][2]
        fw = r.get("framework")
        traces.append(go.Scatter(
            x=[p[0] for p in points], y=[p[1] for p in points], name=esc(name), mode="lines+markers",
            line=dict(color=color(fw), dash=DASHES[variant_index(r) % len(DASHES)], width=2), marker=dict(size=7),
            hovertemplate=f"<b>{esc(name)}</b><br>{esc(xtitle)} %{{x}}: %{{y:.4g}}<extra></extra>"))
    if not traces:
        return None
    lay = layout(title, xtitle=xtitle, ytitle=ytitle, height=320, xaxis=dict(type="log" if log_x else "linear"))
    return make(title, traces, lay, note)


def reference_line(xs: list, ys: list, name: str) -> go.Scatter:
    return go.Scatter(x=xs, y=ys, name=esc(name), mode="lines", line=dict(color="#111827", dash="dot", width=1.5),
                      hovertemplate=f"<b>{esc(name)}</b><br>%{{x}}: %{{y:.6g}}<extra></extra>")


def ratio_bars(items: list[tuple[str, float, bool, str]], title: str, note: str = "") -> Chart | None:
    """Comparison: (label, ratio B/A, significant, framework) as bars from 1 to the ratio (log axis)."""
    items = [i for i in items if i[1] is not None]
    if not items:
        return None
    labels = [esc(i[0]) for i in items]
    colors = [("#C53030" if r > 1 else "#2F855A") if sig else "#A0AEC0" for _, r, sig, _ in items]
    trace = go.Bar(y=labels, x=[r - 1 for _, r, _, _ in items], base=[1] * len(items), orientation="h",
                   marker=dict(color=colors), name="B / A", showlegend=False,
                   customdata=[[r, "beyond noise" if sig else "within noise"] for _, r, sig, _ in items],
                   hovertemplate="<b>%{y}</b><br>B / A = %{customdata[0]:.3f}<br>%{customdata[1]}<extra></extra>")
    lo = min(min(r for _, r, _, _ in items), 0.8)
    hi = max(max(r for _, r, _, _ in items), 1.25)
    lay = layout(title, xtitle="B / A (log scale; < 1: B is faster)", height=_bar_height(len(items)),
                 yaxis=dict(autorange="reversed", type="category", gridcolor="rgba(0,0,0,0)"),
                 xaxis=dict(type="log", range=[math.log10(lo / 1.1), math.log10(hi * 1.1)]),
                 shapes=[dict(type="line", xref="x", yref="paper", x0=1, x1=1, y0=0, y1=1,
                              line=dict(color="#111827", width=1))])
    return make(title, [trace], lay, note, wide=True)


def value_of(path: str):
    return lambda r: get(r, path)
