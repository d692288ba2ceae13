"""The ledger is the only code that reads or writes the books; the simulator owns its tables."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "quant"
BOOKS = r"(?:orders|fills|positions|execution_runs|reconciliation_breaks|corporate_events|sim_\w+)"
SQL_ON_BOOKS = re.compile(
    rf"\b(?:from|into|update|join|table|truncate)\s+ops\.{BOOKS}\b", re.IGNORECASE
)
OWNERS = {
    "books": lambda path: path.parts[0] == "ledger",
    "simulator": lambda path: path.parts[:2] == ("venues", "sim"),
}


def _offenders(pattern: re.Pattern[str], allowed) -> list[str]:  # noqa: ANN001
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if allowed(relative):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                found.append(f"quant/{relative}:{number}: {line.strip()}")
    return found


def test_books_when_grepped_then_sql_only_in_ledger_and_simulator_store() -> None:
    offenders = _offenders(
        SQL_ON_BOOKS, lambda p: OWNERS["books"](p) or OWNERS["simulator"](p)
    )
    assert offenders == []


def test_simulator_tables_when_grepped_then_sql_only_in_simulator_store() -> None:
    sim_tables = re.compile(r"\b(?:from|into|update|join|table|truncate)\s+ops\.sim_\w+\b",
                            re.IGNORECASE)
    offenders = _offenders(sim_tables, OWNERS["simulator"])
    assert offenders == []


def test_grep_when_sql_touches_books_then_it_is_found() -> None:
    # the pattern must catch the statements it is there to forbid
    for statement in ("select * from ops.orders", "insert into ops.fills (x) values (1)",
                      "UPDATE ops.positions set", "delete from ops.sim_orders where",
                      "join ops.execution_runs r using (namespace)"):
        assert SQL_ON_BOOKS.search(statement), statement
    assert not SQL_ON_BOOKS.search("new fills are inserted into ``ops.fills``")
