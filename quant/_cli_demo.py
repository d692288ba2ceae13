"""``quant demo``: the daily pipeline over recent sessions of the synthetic market."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from quant._cli_common import console, fail, output_to
from quant.config import get_settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``quant demo`` to ``app``."""
    app.command("demo")(demo)


@contextmanager
def _sidecar_running(settings, console_out: Console):  # noqa: ANN001, ANN202
    """Use the configured sidecar, or run a local demo one for the duration."""
    from quant.exceptions import SidecarError
    from quant.sidecar.client import SidecarClient

    try:
        with SidecarClient(settings.sidecar_url, timeout_s=0.5) as client:
            client.health()
        yield "already running"
        return
    except SidecarError:
        pass
    import subprocess

    logfile = settings.home / "logs" / "sidecar-demo.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "quant.cli", "sidecar", "--demo"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with SidecarClient(settings.sidecar_url, timeout_s=0.5) as client:
                    client.health()
                break
            except SidecarError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise fail(f"the demo sidecar did not start; see {logfile}") from None
                time.sleep(0.2)
        yield f"demo sidecar started (log {logfile})"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _session_figures(settings, sessions: list[date]) -> dict[date, dict]:  # noqa: ANN001
    """Per session: the simulated account's equity and P&L, orders, rejections, DQ status."""
    from quant import ledger
    from quant.db import connect

    conn = connect(settings)
    out: dict[date, dict] = {}
    try:
        with conn, conn.cursor() as cur:
            previous_equity: dict[str, float] = {}
            for day in sessions:
                row = ledger.latest_execution(conn, "daily_trading", day)
                figures: dict = {}
                if row is not None and row["logical_date"] == day:
                    account, equity = row["account"], row["equity_usd"]
                    orders, rejected = ledger.session_order_counts(conn, row)
                    before = previous_equity.get(account)
                    figures = {
                        "account": account, "equity_usd": equity, "orders": orders,
                        "rejected": rejected,
                        "pnl_usd": None if before is None else equity - before,
                    }
                    previous_equity[account] = equity
                cur.execute(
                    "select count(*) filter (where not success and severity = 'blocking'), "
                    "count(*) filter (where not success and severity = 'warning'), count(*) "
                    "from ops.dq_results where session_date = %s",
                    (day,),
                )
                blocking, warnings, checks = cur.fetchone()
                figures["quality"] = (
                    "not run" if not checks else
                    "[red]failed[/]" if blocking else
                    f"[yellow]{warnings} warning(s)[/]" if warnings else "[green]passed[/]"
                )
                out[day] = figures
    finally:
        conn.close()
    return out


def demo(
    sessions: Annotated[int, typer.Option(min=1, max=500, help="how many recent sessions")] = 60,
) -> None:
    """Run daily_trading over the most recent sessions of the synthetic market, then summarise.

    The data is ingested and the dbt models are built once for the whole range
    (they are point in time: a session's rows never depend on later data), then
    each session runs through the DAG with its dbt tasks marked done; the last
    session runs every task, dbt included.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from quant.calendar import get_calendar
    from quant.data import ingest_bars
    from quant.db import migrate
    from quant.orchestration import ensure_airflow_db, run_dag
    from quant.report import report_path
    from quant.transform import dbt_vars, run_dbt

    settings = get_settings()
    cal = get_calendar(settings.exchange)
    last = cal.latest_closed_session()
    days = cal.sessions(cal.shift(last, -(sessions - 1)), last)
    console.print(
        f"quant demo: {len(days)} sessions {days[0]} .. {days[-1]}, provider "
        f"{settings.provider}, broker {settings.broker} ({settings.trading_mode}), state in {settings.home}"
    )
    migrate(settings)
    ensure_airflow_db(settings)
    logfile = settings.home / "logs" / "demo.log"
    out = Console(file=os.fdopen(os.dup(1), "w"), force_terminal=console.is_terminal)
    results = []
    started = time.monotonic()
    with _sidecar_running(settings, console) as sidecar_note:
        console.print(f"risk sidecar: {settings.sidecar_url} ({sidecar_note})")
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out,
        ) as progress:
            bar = progress.add_task("ingest and dbt build", total=len(days) + 1)
            with output_to(logfile):
                ingest_bars(last, start=cal.shift(days[0], -(settings.history_sessions - 1)),
                            settings=settings)
                run_dbt(["build"], settings=settings, vars=dbt_vars(last, settings))
            progress.advance(bar)
            for day in days:
                progress.update(bar, description=f"daily_trading {day}")
                t0 = time.monotonic()
                with output_to(logfile):
                    result = run_dag(
                        day, settings=settings,
                        mark_success_pattern=None if day == last else r"dbt\..*",
                    )
                results.append((result, time.monotonic() - t0))
                progress.advance(bar)
    figures = _session_figures(settings, [r.session for r, _ in results])
    table = Table(title="daily_trading runs")
    for col in ("session", "state", "account", "equity (USD)", "P&L (USD)", "orders",
                "rejected", "data quality", "seconds"):
        table.add_column(col, justify="right" if col not in ("session", "state", "account") else "left")
    for result, secs in results:
        colour = "green" if result.succeeded else "red"
        f = figures.get(result.session, {})
        pnl = f.get("pnl_usd")
        table.add_row(
            str(result.session), f"[{colour}]{result.state}[/]", f.get("account", ""),
            f"{f['equity_usd']:,.0f}" if f.get("equity_usd") is not None else "",
            "" if pnl is None else f"[{'green' if pnl >= 0 else 'red'}]{pnl:+,.0f}[/]",
            str(f.get("orders", 0)), str(f.get("rejected", 0)), f.get("quality", ""),
            f"{secs:.1f}",
        )
    (console if console.is_terminal else Console(width=150)).print(table)
    failed = [r for r, _ in results if not r.succeeded]
    console.print(f"total {time.monotonic() - started:.0f} s; task logs: {logfile}")
    # the last run's own report (the session's page beside it lists every run of the session)
    last_report = report_path("daily_trading", results[-1][0].run_id, settings)
    console.print(f"report: {last_report}", soft_wrap=True)
    if failed:
        raise fail(f"{len(failed)} run(s) failed: {', '.join(str(r.session) for r in failed)}")
