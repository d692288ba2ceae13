"""Great Expectations Data Docs made readable offline.

GX writes pages that load Bootstrap, jQuery, Font Awesome, Vega and its logo from
public CDNs, and build the index's table of validation results with those
scripts: offline they are unstyled and the index lists no validation. Before a
page is served, :func:`offline_html` removes every reference that would leave
the machine and injects a small stylesheet of ours; :func:`validation_pages`
finds the validation result pages on disk, so the index can list them and the
run's data-quality page can link to them.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OFFLINE_CSS", "ValidationPage", "offline_html", "validation_pages", "validations_banner"]

OFFLINE_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1f24;max-width:1200px}
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .6rem;border:1px solid #d0d7de;
text-align:left;vertical-align:top}th{background:#f6f8fa}
.cooltip .top,.tooltip,.sr-only,.modal,.navbar-toggler,.ge-footer,.fa,.fas,button{display:none}
.alert{padding:.5rem;border-radius:.3rem;background:#f6f8fa}.text-danger{color:#cf222e}
.text-success{color:#1a7f37}.card{border:1px solid #d0d7de;border-radius:.3rem;margin:.5rem 0;
padding:.5rem}ul.nav{list-style:none;padding:0}ul.nav li{display:inline-block;margin-right:1rem}
.quant-offline{border:1px solid #d0d7de;border-radius:.3rem;padding:.6rem;margin:.6rem 0;
background:#f6f8fa}.quant-offline .failed{color:#cf222e;font-weight:700}
"""
"""The stylesheet injected into every Data Docs page (tables, cards, hidden tooltips)."""

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>|<script\b[^>]*/>", re.I | re.S)
_TAG = re.compile(r"<(link|img|iframe|source|embed|object|audio|video|meta)\b[^>]*>", re.I)
_ATTR_URL = re.compile(
    r"""\s[\w:.-]+\s*=\s*(?:"\s*(?:https?:)?//[^"]*"|'\s*(?:https?:)?//[^']*'|(?:https?:)?//[^\s>]*)""",
    re.I,
)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)\s*(?:https?:)?//[^)]*\)""", re.I)
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*['"]?\s*(?:https?:)?//[^;]*;?""", re.I)
_HEAD_END = re.compile(r"</head\s*>", re.I)
_BODY_START = re.compile(r"<body\b[^>]*>", re.I)


def _external(tag: str, host: str | None) -> bool:
    """Whether a tag points at anything outside this server (an absolute or protocol-relative URL)."""
    for match in re.finditer(r"""(?:https?:)?//([^/"'\s>?#]+)""", tag, re.I):
        if host is None or match.group(1).lower() != host.lower():
            return True
    return False


def offline_html(text: str, *, host: str | None = None, banner: str = "") -> str:
    """A Data Docs page with nothing that leaves the machine, styled by :data:`OFFLINE_CSS`.

    Removed: every ``<script>`` (the inline ones only drive the CDN libraries, which
    are gone), every ``<link>``, ``<img>``, ``<iframe>``, media or ``<meta>`` tag that
    names another host, any other attribute whose value is an absolute
    ``http(s)://`` or ``//`` URL (links to greatexpectations.io become plain text),
    and CSS ``url(...)`` and ``@import`` of such URLs. ``host`` (``name:port``) is
    this server: absolute URLs to it are kept on link tags. ``banner`` (HTML) is
    inserted at the top of the body.
    """
    out = _SCRIPT.sub("", text)
    out = _TAG.sub(lambda m: "" if _external(m.group(0), host) else m.group(0), out)
    out = _ATTR_URL.sub("", out)
    out = _CSS_IMPORT.sub("", out)
    out = _CSS_URL.sub("none", out)
    style = f'<style id="quant-offline">{OFFLINE_CSS}</style>'
    out, found = _HEAD_END.subn(style + "</head>", out, count=1)
    if not found:
        out = style + out
    if banner:
        out, found = _BODY_START.subn(lambda m: m.group(0) + banner, out, count=1)
        if not found:
            out = banner + out
    return out


@dataclass(frozen=True, slots=True)
class ValidationPage:
    """One validation result page of a Data Docs site."""

    suite: str
    path: str
    """Relative to the site's folder, with ``/`` separators (``validations/<suite>/.../x.html``)."""
    validated_at: str
    """GX's run time folder name, e.g. ``20261203T093314.273940Z``."""


def validation_pages(docs: Path) -> list[ValidationPage]:
    """The validation result pages under ``docs/validations``, by suite then time."""
    root = docs / "validations"
    if not root.is_dir():
        return []
    found = []
    for file in root.rglob("*.html"):
        parts = file.relative_to(root).parts
        if file.is_symlink() or len(parts) < 2:
            continue
        found.append(ValidationPage(
            suite=parts[0],
            path=file.relative_to(docs).as_posix(),
            validated_at=parts[-2] if len(parts) >= 3 else "",
        ))
    return sorted(found, key=lambda p: (p.suite, p.validated_at, p.path))


def validations_banner(pages: list[ValidationPage], failed_suites: set[str], prefix: str) -> str:
    """A list of the validation pages (failed suites first) to put on top of the Data Docs index.

    ``prefix`` is prepended to each page's relative path (``""`` from the index).
    """
    if not pages:
        return ('<div class="quant-offline"><strong>Validation results</strong>: '
                "none written for this run.</div>")
    ordered = sorted(pages, key=lambda p: (p.suite not in failed_suites, p.suite, p.validated_at))
    items = "".join(
        f'<li><a href="{html.escape(prefix + p.path)}">{html.escape(p.suite)}</a>'
        + (' <span class="failed">failed</span>' if p.suite in failed_suites else " passed")
        + (f" &middot; {html.escape(p.validated_at)}" if p.validated_at else "")
        + "</li>"
        for p in ordered
    )
    return (f'<div class="quant-offline"><strong>Validation results of this run</strong>'
            f"<ul>{items}</ul></div>")
