"""Figures of the report pages, rendered by matplotlib as inline SVG.

Each function returns an ``<figure>`` element holding an ``<svg>`` document, so
a page needs no file and no network asset. Figures use the object API
(``matplotlib.figure.Figure``), not pyplot: no global state, safe in any
process (Airflow workers, the API server).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from datetime import date
from typing import Any

__all__ = ["bar_figure", "line_figure", "two_panel_figure"]

_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_BLUE, _RED, _GREY = "#0969da", "#cf222e", "#57606a"


def _svg(fig: Any, caption: str) -> str:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "quant-report"  # stable element ids: same data, same bytes
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text (smaller, searchable)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = _METADATA.sub("", svg[svg.index("<svg") :])
    return f"<figure>{svg}<figcaption class=\"meta\">{html.escape(caption)}</figcaption></figure>"


def _figure(height: float = 2.6) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, height), dpi=100)
    return fig


def _date_axis(ax: Any, x: Sequence[date]) -> None:
    """Dates as YYYY-MM-DD; a tick per point when there are few (no hour ticks)."""
    from matplotlib.dates import AutoDateLocator, DateFormatter

    if len(set(x)) <= 10:
        ax.set_xticks(sorted(set(x)))
    else:
        ax.xaxis.set_major_locator(AutoDateLocator(minticks=3, maxticks=8))
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))


def _style(ax: Any, ylabel: str) -> None:
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#d0d7de", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def line_figure(
    x: Sequence[date],
    series: dict[str, Sequence[float | None]],
    *,
    ylabel: str,
    caption: str,
) -> str:
    """One panel, one line per series (``None`` values are gaps)."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    colors = [_BLUE, _RED, _GREY, "#1a7f37", "#9a6700"]
    for i, (name, values) in enumerate(series.items()):
        ys = [float("nan") if v is None else float(v) for v in values]
        ax.plot(list(x), ys, label=name, color=colors[i % len(colors)], linewidth=1.4,
                marker="o" if len(x) <= 30 else None, markersize=3)
    _style(ax, ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8, frameon=False)
    _date_axis(ax, x)
    fig.autofmt_xdate()
    return _svg(fig, caption)


def two_panel_figure(
    x: Sequence[date],
    top: Sequence[float],
    bottom: Sequence[float],
    *,
    top_label: str,
    bottom_label: str,
    caption: str,
) -> str:
    """A line on top and a filled area below (an equity curve over its drawdown)."""
    fig = _figure(4.2)
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    marker = "o" if len(x) <= 30 else None
    ax1.plot(list(x), list(top), color=_BLUE, linewidth=1.4, marker=marker, markersize=3)
    ax2.fill_between(list(x), list(bottom), 0.0, color=_RED, alpha=0.35, step=None)
    ax2.plot(list(x), list(bottom), color=_RED, linewidth=1.0)
    _style(ax1, top_label)
    _style(ax2, bottom_label)
    _date_axis(ax2, x)
    fig.autofmt_xdate()
    return _svg(fig, caption)


def bar_figure(labels: Sequence[str], values: Sequence[float], *, ylabel: str, caption: str) -> str:
    """Vertical bars, one per label (negative values below the axis)."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    colors = [_BLUE if v >= 0 else _RED for v in values]
    ax.bar(list(labels), list(values), color=colors)
    ax.axhline(0.0, color=_GREY, linewidth=0.8)
    _style(ax, ylabel)
    ax.tick_params(axis="x", labelrotation=30)
    return _svg(fig, caption)
