"""HTML building blocks of the report pages: escaping, tables, the page shell."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["empty", "fmt", "kv_table", "page", "rows_table", "section"]

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:1150px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.8rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .7rem;border:1px solid #d0d7de;
text-align:left;font-variant-numeric:tabular-nums;vertical-align:top}th{background:#f6f8fa;font-weight:600}
td.num{text-align:right}.meta{color:#57606a;font-size:.9rem}.empty{color:#57606a;font-style:italic}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:.3rem;font-weight:700}
.success{background:#dafbe1;color:#1a7f37}.failed{background:#ffebe9;color:#cf222e}
.dry{background:#fff8c5;color:#9a6700}
.banner{padding:.7rem 1rem;border-radius:.4rem;margin:.8rem 0;border:1px solid}
.banner.bad{background:#ffebe9;border-color:#ff8182}.banner.warn{background:#fff8c5;border-color:#d4a72c}
.banner.good{background:#dafbe1;border-color:#4ac26b}
figure{margin:.5rem 0}figure svg{max-width:100%;height:auto}details{margin:.4rem 0}
.reasons{font-family:ui-monospace,monospace;font-size:.85rem}
pre.reasons{white-space:pre-wrap;overflow-wrap:anywhere}
"""


def fmt(value: Any, digits: int = 4) -> str:
    """A cell's text: floats to ``digits`` significant figures, lists joined, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, digits) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def _cell(value: Any) -> str:
    cls = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"<td{cls}>{html.escape(fmt(value))}</td>"


def kv_table(rows: Mapping[str, Any]) -> str:
    """A two-column table: name, value."""
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


def rows_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, css: str = "") -> str:
    """A table with a header row; ``rows`` are sequences in the order of ``columns``."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def empty(message: str) -> str:
    """The body of a section that has no data yet, saying why."""
    return f'<p class="empty">{html.escape(message)}</p>'


def section(section_id: str, title: str, body: str) -> str:
    """One titled section with a stable id (tests and links find sections by it)."""
    return (
        f'<section id="{html.escape(section_id)}"><h2>{html.escape(title)}</h2>{body}</section>'
    )


def page(title: str, header: str, sections: Iterable[str]) -> str:
    """A complete, self-contained HTML document (inline CSS and figures, no network assets)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        f"{header}\n" + "\n".join(sections) + "\n</body></html>\n"
    )
