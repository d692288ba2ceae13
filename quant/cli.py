"""The ``quant`` command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from quant._cli_backtest import register as register_backtest_command
from quant._cli_common import console, fail, output_to, parse_date
from quant._cli_demo import register as register_demo_command
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
        raise fail("DATABASE_URL points at an external server; it is not managed here")
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
    from quant.orchestration import (
        DAG_ID,
        airflow_cli,
        ensure_airflow_db,
        logical_datetime,
        require_runnable,
    )

    if reprocess not in ("none", "failed", "completed"):
        raise typer.BadParameter(f"{reprocess!r}: use none, failed or completed", param_hint="--reprocess")
    settings = get_settings()
    sessions = get_calendar(settings.exchange).sessions(parse_date(from_), parse_date(to))
    if not sessions:
        raise fail(f"no {settings.exchange} session between {from_} and {to}")
    require_runnable(sessions[0], settings)
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
@app.command("run")
def run(
    date_: Annotated[str, typer.Option("--date", help="the session to run, YYYY-MM-DD")],
    quiet: Annotated[bool, typer.Option(help="send Airflow's task logs to a file")] = False,
) -> None:
    """Run one daily_trading DAG run for a session in-process; non-zero exit if a task failed."""
    from quant.calendar import get_calendar
    from quant.db import migrate
    from quant.orchestration import require_runnable, run_dag

    settings = get_settings()
    session = get_calendar(settings.exchange).require_session(parse_date(date_))
    require_runnable(session, settings)
    migrate(settings)
    logfile = settings.home / "logs" / f"run-{session.isoformat()}.log"
    if quiet:
        with output_to(logfile):
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


register_demo_command(app)  # demo
register_backtest_command(app)  # backtest


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
