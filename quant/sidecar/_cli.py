"""The sidecar's commands: ``quant sidecar``, ``quant kill``, ``quant resume``,
``quant status`` and ``quant bench sidecar``. Registered on the main app by
:func:`register`; heavy imports happen inside the commands."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]

console = Console()
err = Console(stderr=True)


def _settings() -> Any:
    from quant.config import get_settings

    return get_settings()


def sidecar_command(
    demo: Annotated[
        bool, typer.Option(help="local demo: generate a token under QUANT_HOME if none is set")
    ] = False,
    replay_session: Annotated[
        str | None,
        typer.Option(help="replay this session's daily bars (YYYY-MM-DD) as intraday marks"),
    ] = None,
    replay_steps: Annotated[int, typer.Option(min=4, help="batches of marks in the replay")] = 78,
    replay_interval_s: Annotated[
        float, typer.Option(min=0.0, help="seconds between replayed batches")
    ] = 1.0,
) -> None:
    """Run the risk sidecar in the foreground (Ctrl-C stops it)."""
    from quant.sidecar._server import serve

    settings = _settings()
    feed = None
    if replay_session is not None:
        from quant.sidecar._feed import bar_paths, load_session_bars, replay_feed

        bars = load_session_bars(settings, date.fromisoformat(replay_session))
        if not bars:
            raise typer.BadParameter(f"no bars for {replay_session} in raw.bars")
        feed = replay_feed(bar_paths(bars, replay_steps), replay_interval_s)
    serve(settings, demo=demo, feed=feed, echo=console.print)


def kill_command(
    reason: Annotated[str, typer.Option(help="why (recorded with the event)")],
    mode: Annotated[
        str, typer.Option(help="halt | reduce (only orders that shrink positions) | flatten")
    ] = "halt",
) -> None:
    """Trip the kill switch: stop new orders and cancel every open order at the broker.

    When the sidecar cannot be reached, the kill is recorded in the database and
    the orders are cancelled at the broker from here; a sidecar started later
    comes up in the recorded state.
    """
    from quant.exceptions import SidecarAuthError, SidecarError
    from quant.sidecar.client import SidecarClient

    if mode not in ("halt", "reduce", "flatten"):
        raise typer.BadParameter("mode must be halt, reduce or flatten")
    settings = _settings()
    try:
        with SidecarClient.from_settings(settings) as client:
            out = client.kill(reason, mode, actor="cli")  # type: ignore[arg-type]
    except SidecarAuthError:
        raise
    except SidecarError as exc:
        err.print(f"[yellow]sidecar not reachable ({exc})[/]")
        err.print("recording the kill in the database and cancelling at the broker directly")
        out = _direct_kill(settings, reason, mode)
    _print_kill(out)


def _direct_kill(settings: Any, reason: str, mode: str) -> dict[str, Any]:
    from quant.db import connect
    from quant.sidecar._server import broker_factory
    from quant.sidecar._service import RiskService
    from quant.sidecar._store import StateStore

    service = RiskService(
        settings.risk,
        store=StateStore(lambda: connect(settings), provider=settings.provider),
        broker_factory=broker_factory(settings),
    )
    service.start(sync_broker=False)
    return service.kill(reason, mode, actor="cli-direct")


def _print_kill(out: dict[str, Any]) -> None:
    console.print(f"trading state: [bold red]{out['trading_state']}[/]")
    if not out.get("persisted", False):
        err.print("[bold red]warning:[/] the kill event was NOT recorded in the database")
    cancel = out.get("cancel") or {}
    console.print(
        f"cancelled {cancel.get('cancelled', 0)} open order(s) in {cancel.get('attempts', 0)} "
        f"attempt(s); still open: {cancel.get('remaining')}"
    )
    for e in cancel.get("errors", []):
        err.print(f"[red]cancel error:[/] {e}")
    if "flatten" in out:
        fl = out["flatten"]
        console.print(f"flatten: {len(fl['submitted'])} reduce-only order(s) submitted")
        for e in fl.get("errors", []):
            err.print(f"[red]flatten error:[/] {e}")
    if cancel.get("remaining"):
        raise typer.Exit(1)


def resume_command(
    reason: Annotated[str, typer.Option(help="why it is safe to trade again")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Resume trading (back to ACTIVE). Needs the running sidecar; recorded first."""
    from quant.sidecar.client import SidecarClient

    settings = _settings()
    with SidecarClient.from_settings(settings) as client:
        state = client.health()
        if state["trading_state"] == "ACTIVE":
            console.print("already ACTIVE")
            return
        if not yes:
            typer.confirm(f"trading is {state['trading_state']}; resume trading?", abort=True)
        out = client.resume(reason, actor="cli")
    console.print(f"trading state: [bold green]{out['trading_state']}[/] (event {out['event_id']})")


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="print GET /v1/state as JSON")] = False,
) -> None:
    """Show the sidecar's trading state, book and recent kill-switch events.

    Exit code 3 when the sidecar cannot be reached (the last recorded state is shown).
    """
    from quant.exceptions import DatabaseError, SidecarError
    from quant.sidecar.client import SidecarClient

    settings = _settings()
    try:
        with SidecarClient.from_settings(settings) as client:
            state = client.state()
    except SidecarError as exc:
        err.print(f"[yellow]sidecar not reachable at {settings.sidecar_url}:[/] {exc}")
        from quant.db import connect
        from quant.sidecar._store import StateStore

        try:
            store = StateStore(lambda: connect(settings))
            last = store.recent_events(1)
            store.close()
        except DatabaseError as db_exc:
            err.print(f"[red]database not reachable either:[/] {db_exc}")
            raise typer.Exit(3) from None
        recorded = last[0]["to_state"] if last else "ACTIVE (no event recorded)"
        console.print(f"last recorded trading state: [bold]{recorded}[/]")
        raise typer.Exit(3) from None
    if as_json:
        console.print_json(json.dumps(state))
        return
    colour = {"ACTIVE": "green", "REDUCING": "yellow", "HALTED": "red"}[state["trading_state"]]
    console.print(
        f"trading state: [bold {colour}]{state['trading_state']}[/] since {state['since']}"
    )
    if state.get("fail_closed_reason"):
        console.print(f"[red]fail closed:[/] {state['fail_closed_reason']}")
    book = state["book"]
    console.print(
        f"session {book['session']}  equity {book['equity_usd']:,.2f} USD  "
        f"day P&L {book['day_pnl_usd']:,.2f} USD  drawdown {book['drawdown']:.2%}  "
        f"positions {len(book['positions'])}  orders today {book['orders_today']}"
    )
    for scope in ("symbol_overrides", "strategy_overrides"):
        for key, ov in book[scope].items():
            console.print(f"override {scope.split('_')[0]} {key}: {ov}")
    table = Table("event", "at", "kind", "state", "code", "reason", "actor")
    for e in state.get("recent_events", [])[:10]:
        table.add_row(
            str(e["event_id"]),
            e["at"][:19],
            e["kind"],
            f"{e['from_state']}->{e['to_state']}",
            e["reason_code"],
            e["reason"][:60],
            e["actor"],
        )
    console.print(table)


def bench_sidecar_command(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Latency of the sidecar: in process, over loopback HTTP, and kill to cancelled."""
    from quant.sidecar._bench import run_benchmark

    figures = run_benchmark()
    if as_json:
        print(json.dumps(figures))
        return
    console.print(
        f"in process: p50 {figures['in_process']['p50_us']} us, p99 {figures['in_process']['p99_us']} us"
    )
    for key in ("http_1", "http_500"):
        console.print(f"{key}: p50 {figures[key]['p50_ms']} ms, p99 {figures[key]['p99_ms']} ms")
    console.print(f"kill to cancelled: {figures['kill_to_cancelled_ms']} ms")


def register(app: typer.Typer, bench_app: typer.Typer | None = None) -> None:
    """Add the sidecar commands to ``app`` (and ``sidecar`` to ``bench_app``)."""
    app.command("sidecar")(sidecar_command)
    app.command("kill")(kill_command)
    app.command("resume")(resume_command)
    app.command("status")(status_command)
    if bench_app is not None:
        bench_app.command("sidecar")(bench_sidecar_command)
