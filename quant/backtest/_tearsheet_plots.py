"""The tear sheet's plots: inline SVG from matplotlib's object API (no pyplot state).

Every function returns an HTML ``<figure>`` (or a one-line note when there is
nothing to plot); :mod:`quant.backtest._tearsheet` puts them on the page.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from quant.backtest._result import MAIN

if TYPE_CHECKING:
    import pandas as pd

    from quant.backtest._result import BacktestResult

__all__ = ["COLOURS", "histogram", "ic_plot", "lines", "svg"]

_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
COLOURS = {MAIN: "#0969da", "equal_weight": "#57606a", "top_k": "#bf8700"}
"""Line colour per strategy name."""


def svg(fig: Any, caption: str) -> str:
    """``fig`` as an inline SVG ``<figure>`` with ``caption`` (deterministic: no date, fixed ids)."""
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "quant-backtest"
    matplotlib.rcParams["svg.fonttype"] = "none"
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = _METADATA.sub("", text[text.index("<svg"):])
    return f'<figure>{text}<figcaption class="meta">{html.escape(caption)}</figcaption></figure>'


def _figure(height: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, height), dpi=100)
    ax = fig.add_subplot()
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#d0d7de", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _axes(height: float = 2.8) -> tuple[Any, Any]:
    from matplotlib.dates import AutoDateLocator, DateFormatter

    fig, ax = _figure(height)
    ax.xaxis.set_major_locator(AutoDateLocator(minticks=3, maxticks=8))
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    return fig, ax


Lines = Mapping[str, tuple[Sequence[date], Sequence[float]]]


def lines(series: Lines, ylabel: str, caption: str, *, zero: bool = False,
          dashed: Lines | None = None) -> str:
    """One line per strategy (its colour), and ``dashed`` ones beside them, over the sessions."""
    fig, ax = _axes()
    for name, (x, y) in series.items():
        ax.plot(list(x), list(y), label=name, color=COLOURS.get(name), linewidth=1.3)
    for name, (x, y) in (dashed or {}).items():
        ax.plot(list(x), list(y), color=COLOURS.get(name.split(" ")[0]), linewidth=1.1,
                linestyle="--", label=name)
    if zero:
        ax.axhline(0.0, color="#8c959f", linewidth=0.8)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return svg(fig, caption)


def histogram(returns: pd.Series, var_95: float | None, caption: str) -> str:
    """Histogram of daily returns (percent) with the 95 % value at risk marked."""
    r = returns.to_numpy(dtype=float)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return '<p class="meta">Fewer than two daily returns: no distribution.</p>'
    fig, ax = _figure(2.8)
    bins = int(min(60, max(10, np.sqrt(r.size) * 2)))
    ax.hist(100 * r, bins=bins, color=COLOURS[MAIN], alpha=0.75)
    ax.axvline(100 * float(r.mean()), color="#1f2328", linewidth=1.0, label="mean")
    if var_95 is not None:
        ax.axvline(100 * var_95, color="#cf222e", linewidth=1.2, linestyle="--",
                   label="VaR 95 %")
    ax.set_xlabel("daily return, %", fontsize=9)
    ax.set_ylabel("sessions", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return svg(fig, caption)


def ic_plot(result: BacktestResult) -> str:
    """Daily rank IC bars with the 21-session means of IC and rank IC."""
    ic = result.ic
    if ic.empty:
        return '<p class="meta">No IC: fewer than two sessions with scores and next-session returns.</p>'
    fig, ax = _axes(3.0)
    x = list(ic["session"])
    ax.bar(x, ic["rank_ic"], color="#8c959f", width=1.0, label="daily rank IC")
    ax.plot(x, ic["ic"].rolling(21, min_periods=1).mean(), color="#0969da", linewidth=1.4,
            label="IC, 21-session mean")
    ax.plot(x, ic["rank_ic"].rolling(21, min_periods=1).mean(), color="#cf222e", linewidth=1.4,
            label="rank IC, 21-session mean")
    ax.axhline(0.0, color="#57606a", linewidth=0.8)
    ax.set_ylabel("correlation", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return svg(fig, "Correlation of the model's scores at D with the return the book can earn on "
                    "them: from the next session's open, where the orders fill, to the open after "
                    "it (IC: Pearson, rank IC: Spearman).")
