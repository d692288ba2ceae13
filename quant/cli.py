"""The ``quant`` command line."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from quant.config import get_settings
from quant.exceptions import QuantError
from quant.sidecar._cli import register as register_sidecar_commands

app = typer.Typer(
    name="quant",
    help="Daily batch trading pipeline on Apache Airflow 3, with a risk sidecar.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The pipeline's PostgreSQL (embedded unless DATABASE_URL is set).")
app.add_typer(db_app, name="db")
bench_app = typer.Typer(help="Benchmarks that print JSON figures.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
register_sidecar_commands(app, bench_app)  # sidecar, kill, resume, status, bench sidecar

console = Console()


def _fail(message: str, code: int = 1) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


# -- database -------------------------------------------------------------------------------
@db_app.command("up")
def db_up() -> None:
    """Start the embedded PostgreSQL (harmless when running) and apply migrations."""
    from quant.db import database_url, migrate

    settings = get_settings()
    url = database_url(settings)
    applied = migrate(settings)
    where = "external server" if settings.database_url else f"embedded, data in {settings.pgdata_dir}"
    console.print(f"PostgreSQL up ({where})")
    console.print(f"migrations applied now: {', '.join(applied) if applied else 'none (up to date)'}")
    console.print(f"url: {url}")


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded PostgreSQL."""
    from quant.db import stop_embedded

    settings = get_settings()
    if settings.database_url:
        raise _fail("DATABASE_URL points at an external server; it is not managed here")
    stopped = stop_embedded(settings.pgdata_dir)
    console.print("stopped" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Show whether the database is running and which migrations are applied."""
    from quant.db import applied_migrations, available_migrations, embedded_status

    settings = get_settings()
    if not settings.database_url:
        status = embedded_status(settings.pgdata_dir)
        console.print(f"embedded PostgreSQL in {status.pgdata}")
        console.print(f"  initialised: {status.initialised}")
        console.print(f"  running: {status.running}" + (f" (pid {status.pid})" if status.pid else ""))
        if not status.running:
            raise typer.Exit(3)
    applied = applied_migrations(settings)
    pending = [m.name for m in available_migrations() if m.name not in applied]
    console.print(f"migrations applied: {len(applied)}, pending: {', '.join(pending) or 'none'}")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (starting the embedded server if needed)."""
    from quant.db import database_url

    print(database_url(get_settings()))


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations."""
    from quant.db import migrate

    applied = migrate(get_settings())
    console.print(f"applied: {', '.join(applied) if applied else 'none (up to date)'}")


# -- airflow --------------------------------------------------------------------------------
@app.command(
    "airflow",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def airflow_passthrough(ctx: typer.Context) -> None:
    """The airflow command line with the project's environment (``quant airflow dags list``)."""
    from quant.orchestration import airflow_cli, ensure_airflow_db

    settings = get_settings()
    if ctx.args[:2] != ["db", "migrate"]:
        ensure_airflow_db(settings)
    raise typer.Exit(airflow_cli(list(ctx.args), settings))


@app.command("up")
def up(
    port: Annotated[int, typer.Option(help="port of the Airflow API server and UI")] = 8080,
    host: Annotated[str, typer.Option(help="address the API server binds")] = "127.0.0.1",
) -> None:
    """Start Airflow (API server/UI, scheduler, DAG processor, triggerer) until Ctrl-C."""
    from quant.supervisor import serve

    raise typer.Exit(serve(get_settings(), port=port, host=host, console=console))


@app.command("backfill")
def backfill(
    from_: Annotated[str, typer.Option("--from", help="first session, YYYY-MM-DD (inclusive)")],
    to: Annotated[str, typer.Option("--to", help="last session, YYYY-MM-DD (inclusive)")],
    max_active_runs: Annotated[
        int, typer.Option(help="runs of this backfill at once (Airflow's REST API defaults to 10)")
    ] = 1,
    reprocess: Annotated[
        str, typer.Option(help="sessions that already have a run: none, failed or completed")
    ] = "none",
    conf: Annotated[str, typer.Option(help="JSON conf for every run, e.g. '{\"optimizer\": \"hrp\"}'")]
    = "",
    dry_run: Annotated[bool, typer.Option(help="list the runs it would create, create none")] = False,
) -> None:
    """Create a daily_trading backfill over the sessions FROM..TO (both included).

    Runs sit at their session's close (21:00 UTC for XNYS), so Airflow's own
    ``backfill create --from-date D --to-date D`` (midnight to midnight) creates no
    run for D; this command passes the first and last sessions' closes. The
    scheduler runs the backfill: start it with ``quant up``.
    """
    from quant.calendar import get_calendar
    from quant.orchestration import DAG_ID, airflow_cli, ensure_airflow_db, logical_datetime

    if reprocess not in ("none", "failed", "completed"):
        raise typer.BadParameter(f"{reprocess!r}: use none, failed or completed", param_hint="--reprocess")
    settings = get_settings()
    sessions = get_calendar(settings.exchange).sessions(_parse_date(from_), _parse_date(to))
    if not sessions:
        raise _fail(f"no {settings.exchange} session between {from_} and {to}")
    ensure_airflow_db(settings)
    args = [
        "backfill", "create", "--dag-id", DAG_ID,
        "--from-date", logical_datetime(sessions[0], settings).isoformat(),
        "--to-date", logical_datetime(sessions[-1], settings).isoformat(),
        "--max-active-runs", str(max_active_runs), "--reprocess-behavior", reprocess,
    ]
    if conf:
        args += ["--dag-run-conf", conf]
    if dry_run:
        args.append("--dry-run")
    console.print(f"{DAG_ID}: backfill of {len(sessions)} session(s), "
                  f"{sessions[0].isoformat()} to {sessions[-1].isoformat()}")
    code = airflow_cli(args, settings)
    if code == 0 and not dry_run:
        console.print("created; the scheduler runs it (`quant up`), "
                      f"{max_active_runs} run(s) at a time")
    raise typer.Exit(code)


# -- runs -----------------------------------------------------------------------------------
@contextmanager
def _output_to(logfile: Path):
    """Send this process's stdout and stderr (file descriptors too) to ``logfile``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(logfile, "a") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None


@app.command("run")
def run(
    date_: Annotated[str, typer.Option("--date", help="the session to run, YYYY-MM-DD")],
    quiet: Annotated[bool, typer.Option(help="send Airflow's task logs to a file")] = False,
) -> None:
    """Run one daily_trading DAG run for a session in-process; non-zero exit if a task failed."""
    from quant.calendar import get_calendar
    from quant.db import migrate
    from quant.orchestration import run_dag

    settings = get_settings()
    session = get_calendar(settings.exchange).require_session(_parse_date(date_))
    migrate(settings)
    logfile = settings.home / "logs" / f"run-{session.isoformat()}.log"
    if quiet:
        with _output_to(logfile):
            result = run_dag(session, settings=settings)
    else:
        result = run_dag(session, settings=settings)
    _print_run(result)
    if not result.succeeded:
        raise typer.Exit(1)


def _print_run(result) -> None:  # noqa: ANN001 - RunResult, imported lazily
    table = Table(title=f"{result.dag_id} {result.session} -> {result.state}")
    table.add_column("task")
    table.add_column("state")
    for task_id, state in result.task_states.items():
        colour = "green" if state == "success" else "red" if state in ("failed", "upstream_failed") else "yellow"
        table.add_row(task_id, f"[{colour}]{state}[/]")
    console.print(table)


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
                    raise _fail(f"the demo sidecar did not start; see {logfile}") from None
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


@app.command("demo")
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
            with _output_to(logfile):
                ingest_bars(last, start=cal.shift(days[0], -(settings.history_sessions - 1)),
                            settings=settings)
                run_dbt(["build"], settings=settings, vars=dbt_vars(last, settings))
            progress.advance(bar)
            for day in days:
                progress.update(bar, description=f"daily_trading {day}")
                t0 = time.monotonic()
                with _output_to(logfile):
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
        raise _fail(f"{len(failed)} run(s) failed: {', '.join(str(r.session) for r in failed)}")


@app.command("backtest")
def backtest(
    start: Annotated[str, typer.Option(help="first day of the range, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last day of the range, YYYY-MM-DD")],
    provider: Annotated[str | None, typer.Option(help="market-data provider (chain); default QUANT_PROVIDER")] = None,
    optimizer: Annotated[str | None, typer.Option(help="portfolio method; default QUANT_PORTFOLIO__OPTIMIZER")] = None,
    trials: Annotated[int, typer.Option("--trials", min=1, help="configurations tried (deflated Sharpe ratio)")] = 1,
    baselines: Annotated[bool, typer.Option(help="also run equal weight and top_k")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as one JSON object on the last line")] = False,
) -> None:
    """Walk-forward backtest on the daily stage functions, with a tear sheet (HTML).

    Ingests the range (plus QUANT_HISTORY_SESSIONS of history), builds the dbt models
    once, then runs retrain (on its schedule), predict, optimise, orders and simulator
    fills session by session, and the equal-weight and top_k baselines beside it.
    """
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from quant.backtest import run_backtest, write_tear_sheet

    settings = get_settings()
    first, last = _parse_date(start), _parse_date(end)
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

        with _output_to(logfile):
            result = run_backtest(first, last, settings=settings, optimizer=optimizer,
                                  provider=provider, n_trials=trials, progress=progress,
                                  baselines=baselines)
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
    console.print(f"{result.seconds:.0f} s; logs: {logfile}")
    console.print(f"tear sheet: {path}")


@bench_app.command("pipeline")
def bench_pipeline(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    symbols: Annotated[str, typer.Option(help="comma-separated universe sizes")] = "50,500",
) -> None:
    """Wall time of one full daily run (dag.test) per universe size, and seconds per task."""
    import json
    import runpy

    from quant.paths import project_root

    bench = runpy.run_path(str(project_root() / "bench" / "pipeline.py"))
    figures = bench["run_benchmark"](tuple(int(n) for n in symbols.split(",")))
    if as_json:
        print(json.dumps(figures))
        return
    for run in figures["runs"]:
        slowest = sorted(run["stages_s"].items(), key=lambda kv: -kv[1])[:3]
        console.print(
            f"{run['symbols']} symbols: {run['state']} in {run['wall_s']} s "
            f"(slowest: {', '.join(f'{k} {v} s' for k, v in slowest)})"
        )
    console.print(f"goal: {figures['goal_symbols']} symbols under {figures['goal_s']:.0f} s: "
                  f"{'met' if figures['meets_goal'] else 'NOT met'}")


def main() -> None:
    """Entry point of the ``quant`` console script."""
    try:
        app()
    except QuantError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
