"""The run context: every stage takes one, nothing else switches a stage's behaviour."""

from __future__ import annotations

import inspect
import re
from datetime import date
from pathlib import Path

import pytest

from quant.execution import generate_orders, pretrade_check, reconcile, submit_orders
from quant.model import predict, retrain_model
from quant.pipeline import RunContext, run_context
from quant.portfolio import optimize_portfolio

STAGES = [retrain_model, predict, optimize_portfolio, generate_orders, pretrade_check,
          submit_orders, reconcile]
QUANT = Path(__file__).resolve().parents[3] / "quant"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.__name__)
def test_stage_when_inspected_then_takes_the_run_context_and_only_its_own_options(stage):
    params = list(inspect.signature(stage).parameters.values())
    assert params[0].name == "run" and params[0].annotation == "RunContext"
    options = {p.name for p in params[1:]}
    # what describes the run (and the backtest's resources) lives in the context only
    assert not options & {f.name for f in RunContext.__dataclass_fields__.values()}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])


def test_quant_when_searched_then_no_context_variable_switches_behaviour():
    users = [
        str(path.relative_to(QUANT.parent))
        for path in QUANT.rglob("*.py")
        if re.search(r"\bContextVar\b", path.read_text())
    ]
    assert users == []


def test_run_context_when_built_from_iso_string_then_session_is_a_date(pg_settings):
    run = run_context("2024-06-28", run_id="r", settings=pg_settings, dry_run=True)
    assert run.session == date(2024, 6, 28)
    assert (run.run_id, run.dry_run, run.relations, run.connections) == ("r", True, None, None)


def test_but_when_session_changed_then_resources_kept_and_original_unchanged(pg_settings):
    marker = object()
    run = run_context(date(2024, 6, 27), settings=pg_settings, targets={"AAA": 0.1},
                      sidecar=marker)
    later = run.but(session=date(2024, 6, 28), run_id="r2")
    assert later.session == date(2024, 6, 28) and later.run_id == "r2"
    assert later.sidecar is marker and later.targets == {"AAA": 0.1}
    assert run.session == date(2024, 6, 27) and run.run_id is None


def test_transaction_when_block_raises_then_rolled_back(pg_settings):
    run = run_context("2024-06-28", settings=pg_settings)
    with run.transaction() as conn, conn.cursor() as cur:
        cur.execute("create table if not exists public.ctx_probe (x int)")
    with pytest.raises(RuntimeError), run.transaction() as conn:
        with conn.cursor() as cur:
            cur.execute("insert into public.ctx_probe values (1)")
        raise RuntimeError("stop")
    with run.transaction() as conn, conn.cursor() as cur:
        cur.execute("select count(*) from public.ctx_probe")
        assert cur.fetchone()[0] == 0
        cur.execute("drop table public.ctx_probe")
