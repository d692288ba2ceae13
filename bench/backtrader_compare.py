"""Our simulator against backtrader: a weekly equal-weight rebalance, side by side in one run.

The same strategy runs twice over the same synthetic bars (500 symbols with a bar
on each of 1,260 sessions, by default):

* **ours**: :class:`quant.execution.SimBroker` (the simulator of backfills and
  backtests, state in PostgreSQL: a throwaway embedded server) with
  :func:`quant.execution.build_orders` turning the weights into orders, no
  model and no optimiser; each rebalance reads the book once (``book``), sends
  its orders as one batch (``submit_many``) and the next session's opening
  auction fills them (``fill_auction``), a transaction each;
* **backtrader** (installed for this benchmark only: ``pip install backtrader``
  when it is missing; skipped with a message when that fails).

Strategy: on the first session of each ISO week, target 99 % of equity split
equally over the names, sized on that session's close; orders smaller than 100
USD are dropped (``build_orders`` decides the orders in both runs, so they trade
the same book). Market orders fill at the next session's open, with no
slippage and a commission of 0.005 USD per share in both.

Both loops run ``--repeat`` times (3 by default), alternating, on data already
in memory. Prints one JSON object:

* ``ours_s`` and ``backtrader_s``: the wall time of each loop's fastest run, and
  ``speedup``, their ratio (backtrader / ours). On a shared machine other work
  slows some runs of either loop, by up to twice here; the fastest run is the
  one least disturbed (the convention of Python's ``timeit``), and both loops
  are judged alike;
* ``ours_median_s``, ``backtrader_median_s`` and ``speedup_median``: the same
  from the median runs; every run's time in ``ours_runs_s`` and
  ``backtrader_runs_s``;
* ``ours_split_s``: ours by call (auction fills, reading the book, order
  generation, submission), in its fastest run;
* both final equities and their relative difference, and the goals (ours at
  least 10 times faster, final equity within 1 %).

Run: ``.venv/bin/python bench/backtrader_compare.py [--symbols 500] [--sessions 1260] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from datetime import date
from typing import Any

from _scratch import bench_home, bench_parser, print_figures

INITIAL_CASH_USD = 1_000_000.0
COMMISSION_PER_SHARE_USD = 0.005
MIN_NOTIONAL_USD = 100.0
INVESTED = 0.99


def ensure_backtrader() -> tuple[Any, str | None]:
    """Import backtrader, installing it with pip first when missing; (module, None) or (None, why)."""
    try:
        import backtrader

        return backtrader, None
    except ImportError:
        pass
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "backtrader"],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        return None, f"pip install backtrader failed: {proc.stderr.strip()[-500:]}"
    try:
        import backtrader

        return backtrader, None
    except ImportError as exc:
        return None, f"backtrader installed but cannot be imported: {exc}"


def market(symbols: int, sessions: int, end: date) -> dict[str, Any]:
    """Bars of the synthetic market: names with a bar on every session, as wide frames."""
    from quant.calendar import get_calendar
    from quant.data import SyntheticProvider

    cal = get_calendar("XNYS")
    start = cal.shift(end, -(sessions - 1))
    days = cal.sessions(start, end)
    provider = SyntheticProvider(symbols=int(symbols * 1.05) + 2, seed=7)
    bars = provider.bars(start, end)
    wide = {f: bars.pivot(index="date", columns="symbol", values=f) for f in
            ("open", "high", "low", "close", "volume")}
    complete = wide["close"].columns[wide["close"].notna().all() & wide["open"].notna().all()]
    names = sorted(complete)[:symbols]
    frames = {f: w.loc[:, names].astype(float) for f, w in wide.items()}
    weeks = [d.isocalendar()[:2] for d in days]
    rebalance = [i == 0 or weeks[i] != weeks[i - 1] for i in range(len(days))]
    return {"days": days, "names": names, "frames": frames, "rebalance": rebalance}


def _weights(names: list[str]) -> dict[str, float]:
    return dict.fromkeys(names, INVESTED / len(names))


def run_ours(data: dict[str, Any]) -> dict[str, Any]:
    """The loop on SimBroker + build_orders; returns seconds, final equity and counts."""
    import uuid

    from quant.calendar import get_calendar
    from quant.config import load_settings
    from quant.db import connect, migrate
    from quant.execution import Order, OrderType, SimBroker, TimeInForce, build_orders

    settings = load_settings()
    migrate(settings)
    cal = get_calendar("XNYS")
    conn = connect(settings)
    with conn, conn.cursor() as cur:
        # the benchmark's account is disposable: commits need not wait for the disk
        cur.execute("set synchronous_commit to off")
    days, names, frames = data["days"], data["names"], data["frames"]
    weights = _weights(names)
    started = time.perf_counter()
    opens = frames["open"].to_numpy().tolist()
    closes = frames["close"].to_numpy().tolist()
    broker = SimBroker(
        conn,
        account=f"bench-{uuid.uuid4().hex[:8]}",
        initial_cash_usd=INITIAL_CASH_USD,
        slippage_bps=0.0,
        commission_per_share_usd=COMMISSION_PER_SHARE_USD,
        max_participation=1.0,
    )
    resting = orders = fills = 0
    split = dict.fromkeys(("fill_auction", "book", "build_orders", "submit"), 0.0)
    clock = time.perf_counter
    for i, day in enumerate(days):
        if resting:
            t0 = clock()
            fills += len(broker.fill_auction(dict(zip(names, opens[i], strict=True)),
                                             at=cal.open_at(day), auction="open"))
            split["fill_auction"] += clock() - t0
            resting = 0
        if data["rebalance"][i] and i < len(days) - 1:
            t0 = clock()
            close = dict(zip(names, closes[i], strict=True))
            account, held = broker.book()
            positions = {p.symbol: p.qty_shares for p in held}
            cash = account.cash_usd
            equity = cash + sum(q * close[s] for s, q in positions.items())
            t1 = clock()
            plan = build_orders(weights, equity_usd=equity, cash_usd=cash, positions=positions,
                                prices=close, adv_shares=None, min_notional_usd=MIN_NOTIONAL_USD)
            t2 = clock()
            split["book"] += t1 - t0
            split["build_orders"] += t2 - t1
            broker.submit_many([
                Order(client_order_id=f"{day:%Y%m%d}-{o.symbol}-{o.side}", symbol=o.symbol,
                      side=o.side, qty_shares=o.qty_shares, order_type=OrderType.MARKET,
                      time_in_force=TimeInForce.OPG)
                for o in plan.orders
            ])
            split["submit"] += clock() - t2
            orders += len(plan.orders)
            resting = len(plan.orders)
    last = dict(zip(names, closes[-1], strict=True))
    final = broker.account().cash_usd + sum(
        p.qty_shares * last[p.symbol] for p in broker.positions()
    )
    seconds = time.perf_counter() - started
    broker.close()
    _discard(connect(settings), broker.account_name)
    return {"seconds": seconds, "final_equity_usd": final, "orders": orders, "fills": fills,
            "split_s": {k: round(v, 2) for k, v in split.items()}}


def _discard(conn: Any, account: str) -> None:
    """Delete the run's account and vacuum the simulator's tables, so that every run
    starts from the same database (the runs before it would otherwise leave tens of
    thousands of rows each, and work for autovacuum during the next run)."""
    with conn, conn.cursor() as cur:
        for table in ("sim_fills", "sim_orders", "sim_positions", "sim_accounts"):
            cur.execute(f"delete from ops.{table} where account = %s", (account,))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("vacuum (analyze) ops.sim_fills, ops.sim_orders, ops.sim_positions, "
                    "ops.sim_accounts")
    conn.close()


def run_backtrader(bt: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The same loop in backtrader (orders decided by the same ``build_orders``)."""
    import pandas as pd

    from quant.execution import build_orders

    days, names, frames = data["days"], data["names"], data["frames"]
    weights = _weights(names)
    rebalance_days = {d for d, r in zip(days[:-1], data["rebalance"][:-1], strict=True) if r}
    counts = {"orders": 0, "fills": 0}

    class EqualWeight(bt.Strategy):
        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                counts["fills"] += 1

        def next(self) -> None:
            day = self.datas[0].datetime.date(0)
            if day not in rebalance_days:
                return
            close = {d._name: d.close[0] for d in self.datas}
            positions = {d._name: self.getposition(d).size for d in self.datas
                         if self.getposition(d).size}
            plan = build_orders(weights, equity_usd=self.broker.getvalue(),
                                cash_usd=self.broker.getcash(), positions=positions,
                                prices=close, adv_shares=None, min_notional_usd=MIN_NOTIONAL_USD)
            feeds = {d._name: d for d in self.datas}
            for o in plan.orders:
                if o.side == "sell":
                    self.sell(data=feeds[o.symbol], size=o.qty_shares, exectype=bt.Order.Market)
                else:
                    self.buy(data=feeds[o.symbol], size=o.qty_shares, exectype=bt.Order.Market)
            counts["orders"] += len(plan.orders)

    started = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False, preload=True, runonce=True)
    cerebro.broker.setcash(INITIAL_CASH_USD)
    cerebro.broker.set_checksubmit(False)  # as the simulator: no cash check at submission
    cerebro.broker.setcommission(commission=COMMISSION_PER_SHARE_USD,
                                 commtype=bt.CommInfoBase.COMM_FIXED, stocklike=True)
    index = pd.to_datetime(pd.Index(days))
    for name in names:
        frame = pd.DataFrame(
            {f: frames[f][name].to_numpy() for f in ("open", "high", "low", "close", "volume")},
            index=index,
        )
        frame["openinterest"] = 0.0
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=name)
    cerebro.addstrategy(EqualWeight)
    cerebro.run()
    final = cerebro.broker.getvalue()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "final_equity_usd": final, **counts}


def _fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["seconds"])


def _median_seconds(runs: list[dict[str, Any]]) -> float:
    return statistics.median(r["seconds"] for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, years=False)
    parser.add_argument("--sessions", type=int, default=1260)
    parser.add_argument(
        "--repeat", type=int, default=3,
        help="run both loops this many times, alternating (the fastest and median runs count)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with bench_home("qbench-bt-"):
        figures = _compare(args)
    return print_figures(figures)


def _compare(args: argparse.Namespace) -> dict[str, Any]:
    """Both loops ``args.repeat`` times, alternating; the figures of the fastest and median runs."""
    data = market(args.symbols, args.sessions, args.end)
    bt, why = ensure_backtrader()
    ours_runs, their_runs = [], []
    for _ in range(args.repeat):
        # each run starts from a collected heap: what an earlier run left (backtrader's
        # objects above all) would otherwise be traversed by the next run's collections
        gc.collect()
        ours_runs.append(run_ours(data))
        if bt is not None:
            gc.collect()
            their_runs.append(run_backtrader(bt, data))
    ours = _fastest(ours_runs)
    figures: dict[str, Any] = {
        "symbols": len(data["names"]),
        "sessions": len(data["days"]),
        "rebalances": sum(data["rebalance"][:-1]),
        "commission_per_share_usd": COMMISSION_PER_SHARE_USD,
        "repeat": args.repeat,
        "ours_s": round(ours["seconds"], 2),
        "ours_median_s": round(_median_seconds(ours_runs), 2),
        "ours_runs_s": [round(r["seconds"], 2) for r in ours_runs],
        "ours_final_equity_usd": round(ours["final_equity_usd"], 2),
        "ours_orders": ours["orders"],
        "ours_fills": ours["fills"],
        "ours_split_s": ours["split_s"],
    }
    if bt is None:
        figures |= {"backtrader_s": None, "skipped": why}
        print(f"backtrader skipped: {why}", file=sys.stderr)
    else:
        theirs = _fastest(their_runs)
        diff = ours["final_equity_usd"] / theirs["final_equity_usd"] - 1.0
        speedup = theirs["seconds"] / ours["seconds"]
        their_median = _median_seconds(their_runs)
        figures |= {
            "backtrader_version": getattr(bt, "__version__", None),
            "backtrader_s": round(theirs["seconds"], 2),
            "backtrader_median_s": round(their_median, 2),
            "backtrader_runs_s": [round(r["seconds"], 2) for r in their_runs],
            "backtrader_final_equity_usd": round(theirs["final_equity_usd"], 2),
            "backtrader_orders": theirs["orders"],
            "backtrader_fills": theirs["fills"],
            "speedup": round(speedup, 2),
            "speedup_median": round(their_median / _median_seconds(ours_runs), 2),
            "final_equity_rel_diff": diff,
            "goal_speedup": 10.0,
            "goal_equity_rel_diff": 0.01,
            "meets_speed_goal": speedup >= 10.0,
            "meets_equity_goal": abs(diff) <= 0.01,
        }
    return figures


if __name__ == "__main__":
    sys.exit(main())
