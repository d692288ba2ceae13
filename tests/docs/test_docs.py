"""The documentation: README.md stays short, the MkDocs site builds strictly and offline,
the generated configuration reference has a description for every setting, and the
snippets the real-scheduler suite runs exist in the page it reads them from."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).with_name("mkdocs")
SCHEDULER_SUITE = ROOT / "tests" / "integration" / "test_scheduler.py"
README_MAX_LINES = 200


def _settings_fields() -> Iterator[tuple[str, object, type | None]]:
    """``(dotted name, FieldInfo, model of a section or None)`` for every field of Settings,
    walking nested sections and the models inside mappings (``risk.symbol_overrides.<key>``)."""
    from typing import get_args, get_origin

    from pydantic import BaseModel

    from quant.config import Settings

    def model_of(annotation: object) -> type | None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        if get_origin(annotation) is dict:
            return model_of(get_args(annotation)[1])
        return None

    def walk(model: type, prefix: str, seen: frozenset[type]) -> Iterator[tuple[str, object, type | None]]:
        for name, field in model.model_fields.items():
            inner = model_of(field.annotation)
            yield f"{prefix}{name}", field, inner
            if inner is not None and inner not in seen:
                key = ".<key>" if get_origin(field.annotation) is dict else ""
                yield from walk(inner, f"{prefix}{name}{key}.", seen | {inner})

    yield from walk(Settings, "", frozenset({Settings}))


def test_settings_when_walked_then_every_field_has_a_description() -> None:
    # A section (a nested model) is described by its model's docstring when its
    # field has no description: the reference renders that docstring as the
    # section's introduction.
    missing = []
    for name, field, section in _settings_fields():
        text = field.description or (section.__doc__ if section is not None else None)
        if not (text and text.strip()):
            missing.append(name)
    assert missing == [], f"Settings fields without a description: {', '.join(missing)}"


def test_settings_walk_when_run_then_reaches_nested_sections() -> None:
    names = {name for name, _, _ in _settings_fields()}
    assert {"home", "database_url", "risk.max_notional_per_order_usd",
            "risk.symbol_overrides.<key>.reduce_only", "model.horizon_sessions"} <= names


def test_readme_when_counted_then_at_most_200_lines() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): "
        "move the detail into a page of docs/"
    )


def test_readme_when_read_then_names_make_test_as_the_test_command() -> None:
    assert re.search(r"^make test\b", (ROOT / "README.md").read_text(), re.M)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``mkdocs build --strict`` into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [str(MKDOCS), "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out


@pytest.mark.slow
def test_mkdocs_when_built_strict_then_succeeds_with_generated_references(site: Path) -> None:
    assert (site / "index.html").is_file()
    configuration = (site / "reference" / "configuration" / "index.html").read_text()
    assert "QUANT_RISK__MAX_NOTIONAL_PER_ORDER_USD" in configuration
    assert "DATABASE_URL" in configuration
    assert "<!-- generated:" not in configuration
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "quant backfill" in cli and "--max-active-runs" in cli
    tables = (site / "reference" / "ops-tables" / "index.html").read_text()
    assert "client_order_id" in tables and "<!-- generated:" not in tables


class _Assets(HTMLParser):
    """Every URL a page loads by itself: script and img sources, link hrefs, srcset, style url()."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and values.get("src"):
            self.urls.append(values["src"])
        if tag == "link" and values.get("href"):
            self.urls.append(values["href"])
        if values.get("srcset"):
            self.urls += [part.split()[0] for part in values["srcset"].split(",") if part.strip()]
        self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", values.get("style", ""))


def _external(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url.strip(), re.I))


@pytest.mark.slow
def test_site_when_built_then_loads_nothing_from_another_host(site: Path) -> None:
    found = []
    for page in site.rglob("*.html"):
        parser = _Assets()
        parser.feed(page.read_text(errors="replace"))
        found += [f"{page.relative_to(site)}: {url}" for url in parser.urls if _external(url)]
    for sheet in site.rglob("*.css"):
        for url in re.findall(r"(?:url\(\s*['\"]?|@import\s+['\"])([^'\")\s]+)", sheet.read_text(errors="replace")):
            if _external(url):
                found.append(f"{sheet.relative_to(site)}: {url}")
    assert found == [], "external assets:\n" + "\n".join(found)


def _scheduler_suite():  # noqa: ANN202 - the test module itself
    spec = importlib.util.spec_from_file_location("_docs_scheduler_suite", SCHEDULER_SUITE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _snippets_used(source: str) -> set[str]:
    """Names passed to ``run_snippet(..., "NAME")`` or ``guide_snippet("NAME")``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if node.func.id in ("run_snippet", "guide_snippet") and args:
                names.add(args[0].value)
    return names


def test_scheduler_suite_snippets_when_read_then_each_exists_in_its_docs_page() -> None:
    suite = _scheduler_suite()
    page = Path(suite.GUIDE)
    assert page.is_file(), f"the scheduler suite reads {page}, which does not exist"
    assert page.resolve().is_relative_to(ROOT / "docs"), f"{page} is not a page of docs/"
    names = _snippets_used(SCHEDULER_SUITE.read_text())
    assert {"trigger", "backfill-cli-dry-run", "backfill"} <= names
    text = page.read_text()
    missing = [n for n in sorted(names) if f"<!-- snippet: {n} -->" not in text]
    assert missing == [], f"{page.relative_to(ROOT)} lacks the snippet marker(s) {missing}"
    for name in names:
        assert suite.guide_snippet(name).strip(), f"snippet {name!r} is empty"
