"""``quant backtest``: the walk-forward backtest with its tear sheet."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from quant._cli_common import console, output_to, parse_date
from quant.config import get_settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``quant backtest`` to ``app``."""
    app.command("backtest")(backtest)


def backtest(
    start: Annotated[str, typer.Option(help="first day of the range, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last day of the range, YYYY-MM-DD")],
    provider: Annotated[str | None, typer.Option(help="market-data provider (chain); default QUANT_PROVIDER")] = None,
    optimizer: Annotated[str | None, typer.Option(help="portfolio method; default QUANT_PORTFOLIO__OPTIMIZER")] = None,
    trials: Annotated[int, typer.Option("--trials", min=1, help="configurations tried (deflated Sharpe ratio)")] = 1,
    baselines: Annotated[bool, typer.Option(help="also run equal weight and top_k")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as one JSON object on the last line")] = False,
    continue_on_quality_failure: Annotated[bool, typer.Option(
        "--continue-on-quality-failure",
        help="trade a session whose data-quality gate fails (recorded in the result) instead "
             "of stopping there as the DAG does")] = False,
) -> None:
    """Walk-forward backtest on the daily stage functions, with a tear sheet (HTML).

    Ingests the range (plus QUANT_HISTORY_SESSIONS of history), builds the dbt models
    once, then runs the data-quality gate (it stops at a failing session, as the DAG does,
    unless --continue-on-quality-failure), retrain (on its schedule), predict, optimise, orders and simulator
    fills session by session, and the equal-weight and top_k baselines beside it.
    """
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from quant.backtest import run_backtest, write_tear_sheet

    settings = get_settings()
    first, last = parse_date(start), parse_date(end)
    logfile = settings.home / "logs" / "backtest.log"
    bar_console = Console(stderr=True) if as_json else Console(
        file=os.fdopen(os.dup(1), "w"), force_terminal=console.is_terminal
    )
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=bar_console,
    ) as bar:
        task = bar.add_task("backtest", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        with output_to(logfile):
            result = run_backtest(first, last, settings=settings, optimizer=optimizer,
                                  provider=provider, n_trials=trials, progress=progress,
                                  baselines=baselines,
                                  continue_on_quality_failure=continue_on_quality_failure)
    path = write_tear_sheet(result, settings)
    figures = result.figures() | {"tear_sheet": str(path)}
    if as_json:
        print(json.dumps(figures))
        return
    table = Table(title=f"backtest {figures['start']} .. {figures['end']} ({figures['sessions']} sessions, "
                        f"{figures['optimizer']})")
    names = ["strategy", *figures["baselines"]]
    per = {"strategy": figures} | figures["baselines"]
    table.add_column("figure")
    for name in names:
        table.add_column(name, justify="right")
    for key in ("cagr", "annualised_volatility", "sharpe", "sortino", "max_drawdown", "calmar",
                "turnover", "hit_rate", "psr", "dsr", "final_equity_usd"):
        table.add_row(key, *("–" if per[n].get(key) is None else f"{per[n][key]:.4g}" for n in names))
    console.print(table)
    for key in ("ic", "rank_ic"):
        s = figures[key]
        if s["mean"] is not None:
            console.print(f"{key}: mean {s['mean']:.4f}, t {s['t_stat'] or 0:.2f}, over {s['n']} sessions")
    for name, found in figures["warnings"].items():
        for message in found:
            console.print(f"[yellow]warning[/yellow] ({name}): {message}")
    for failed in figures["data_quality_failures"]:
        console.print(f"[yellow]data quality failed for {failed['session']} (traded anyway): "
                      f"{', '.join(failed['checks'])}[/]")
    console.print(f"{result.seconds:.0f} s; logs: {logfile}")
    console.print(f"tear sheet: {path}")
