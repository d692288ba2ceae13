"""One run of the stages for one session, and everything it runs with.

Every stage of the daily pipeline (``retrain_model``, ``predict``,
``optimize_portfolio``, ``generate_orders``, ``pretrade_check``,
``submit_orders``, ``reconcile``) takes a :class:`RunContext` and nothing
else that describes the run: which session, which DAG run and run type, the
settings, the broker and sidecar to use, and the resources a process that
runs many sessions keeps between stages. Stage behaviour depends on what the
context holds, never on hidden process state.

Each environment builds its contexts in one place:

- DAG runs (scheduled, manual, asset-triggered, backfill):
  :func:`quant.orchestration.current_run`, from the Airflow task's run;
- the backtest: :mod:`quant.backtest._session` (one set of resources for the
  whole range: the marts in memory, pooled connections, models fitted ahead
  by the trainer process, the baseline books' target weights);
- the command line, scripts and tests: :func:`run_context`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from quant.config import Settings, get_settings

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from quant.db import ConnectionPool, RelationCache
    from quant.typing import Broker

__all__ = ["DEFAULT_DAG_ID", "PretrainedSource", "RunContext", "run_context"]

DEFAULT_DAG_ID = "daily_trading"

PretrainedSource = Callable[[date, Settings], Any]
"""``source(D, settings)``: the model ``quant.model.fit_model`` gives for D and these settings
(a ``TrainedModel``), or None."""


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """One run of the stages for one session; see the module docstring.

    The first group of fields says which run it is (recorded in the books);
    the second, what it runs with. Every field of the second group defaults to
    "nothing held": each stage opens what it needs and reads PostgreSQL.
    """

    session: date
    """The run's trading session (the DAG run's logical date)."""
    run_id: str | None
    """Airflow's run id (the execution stages find their run by it)."""
    settings: Settings
    dag_id: str = DEFAULT_DAG_ID
    run_type: str = "scheduled"
    """Airflow's run type: ``scheduled``, ``manual``, ``backfill``, ``asset_triggered``, ``test``."""
    backfill_id: str | int | None = None
    """Airflow's backfill id: names the backfill's simulator account."""
    dry_run: bool = False
    """Orders of their own that are never sent (``quant.execution.generate_orders``)."""
    requested_broker: str | None = None
    """The run's ``broker`` param; overrides ``settings.broker``."""
    credentials: Mapping[str, Any] | None = field(default=None, repr=False)
    """Broker credentials (an Airflow connection's); default the environment."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The DAG run's params (its conf over the DAG's defaults): ``force_retrain``,
    ``optimizer``, ``symbols``, ..."""
    latest_session: date | None = None
    """The latest closed session now (the broker choice compares the run's session with it);
    None: the exchange calendar's, asked when needed."""

    broker: Broker | None = None
    """An open broker adapter to use; it must be the one the safety rules choose. Default:
    each stage opens the chosen one and closes it."""
    sidecar: Any = None
    """A ``quant.sidecar.client.SidecarClient`` to use; default one from the settings."""
    relations: RelationCache | None = None
    """The marts held in memory for a range of sessions (read instead of PostgreSQL)."""
    connections: ConnectionPool | None = None
    """Connections handed from one stage to the next instead of a login per stage."""
    models: PretrainedSource | None = None
    """Models fitted ahead for the retrain dates (the backtest's trainer)."""
    targets: Mapping[str, float] | None = None
    """Target weights to trade instead of ``ops.target_weights`` (the backtest's baseline
    books, which keep their own)."""

    def connect(self) -> PgConnection:
        """A connection to the pipeline's database (from :attr:`connections` when held)."""
        if self.connections is not None:
            return self.connections.connect(self.settings)
        from quant.db import connect

        return connect(self.settings)

    @contextmanager
    def transaction(self) -> Iterator[PgConnection]:
        """A connection (:meth:`connect`) whose work is committed on success, rolled back on error."""
        conn = self.connect()
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def but(self, **changes: Any) -> RunContext:
        """A copy with ``changes`` (e.g. the same resources for another session)."""
        return replace(self, **changes)


def run_context(
    session: date | str,
    *,
    run_id: str | None = None,
    settings: Settings | None = None,
    **fields: Any,
) -> RunContext:
    """A :class:`RunContext` for ``session`` (a date or ISO string) with the process's settings
    unless given; other fields by name."""
    day = session if isinstance(session, date) else date.fromisoformat(str(session))
    return RunContext(session=day, run_id=run_id, settings=settings or get_settings(), **fields)
