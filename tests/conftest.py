"""Shared fixtures: a throwaway QUANT_HOME with a real embedded PostgreSQL.

The environment (QUANT_HOME, the Airflow variables) is set when this module
is imported, before any test module can import Airflow, because Airflow reads
its configuration at import time. The server is stopped and the folder
removed at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="qt-", dir="/tmp"))
os.environ.pop("DATABASE_URL", None)
for _key in [k for k in os.environ if k.upper().startswith("QUANT_")]:
    del os.environ[_key]
os.environ["QUANT_HOME"] = str(_HOME)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The session's risk sidecar (started on demand by the `sidecar` fixture): DAG runs of the
# latest session check their orders with it, and fail closed when it is not running.
SIDECAR_TOKEN = "test-session-token"
os.environ["QUANT_SIDECAR_URL"] = f"http://127.0.0.1:{_free_port()}"
os.environ["QUANT_SIDECAR_TOKEN"] = SIDECAR_TOKEN

from quant.config import Settings, get_settings, load_settings  # noqa: E402
from quant.orchestration import apply_airflow_environment  # noqa: E402

apply_airflow_environment(load_settings())

from quant.transform import ensure_manifest  # noqa: E402

ensure_manifest()  # daily_trading renders its dbt tasks from dbt/target/manifest.json

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests on the real Airflow stack run last and together: the stack starts once, late,
    and never idles beside the other tests."""
    items.sort(key=lambda item: "airflow_stack" in getattr(item, "fixturenames", ()))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from quant.db import stop_embedded

    try:
        stop_embedded(_HOME / "pgdata")
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def quant_home() -> Path:
    """The session's QUANT_HOME."""
    return _HOME


@pytest.fixture(scope="session")
def pg_settings() -> Settings:
    """Settings on the embedded PostgreSQL, started and migrated."""
    from quant.db import migrate

    get_settings.cache_clear()
    settings = get_settings()
    migrate(settings)
    return settings


@pytest.fixture()
def db_conn(pg_settings: Settings) -> Iterator:
    """A connection to the pipeline's database, closed after the test."""
    from quant.db import connect

    conn = connect(pg_settings)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture()
def sim_broker(db_conn):  # noqa: ANN001, ANN201 - psycopg2 connection, SimBroker
    """A simulator account of its own (100,000 USD; slippage 10 bps, 0.01 USD a share, at
    most 10 % of a bar's volume) on :func:`db_conn`."""
    import uuid

    from quant.execution import SimBroker

    return SimBroker(
        db_conn,
        account=f"t-{uuid.uuid4().hex[:8]}",
        initial_cash_usd=100_000.0,
        slippage_bps=10.0,
        commission_per_share_usd=0.01,
        max_participation=0.1,
    )


@pytest.fixture()
def clean_db(pg_settings: Settings) -> Settings:
    """Empty every table of the raw and ops schemas (migrations kept) before the test."""
    from quant.testing.db import truncate_pipeline_tables

    truncate_pipeline_tables(pg_settings)
    return pg_settings


@pytest.fixture(scope="session")
def airflow_db(pg_settings: Settings) -> Settings:
    """The Airflow metadata database, migrated."""
    from quant.orchestration import ensure_airflow_db

    ensure_airflow_db(pg_settings)
    return pg_settings


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Folder for files tests leave behind on purpose (screenshots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def sidecar(pg_settings: Settings) -> Iterator:
    """The session's risk sidecar, a real process at QUANT_SIDECAR_URL."""
    from urllib.parse import urlsplit

    from quant.testing.sidecar_process import SidecarProcess

    port = urlsplit(os.environ["QUANT_SIDECAR_URL"]).port
    # no live price feed in the tests: the marks come only from the stages' checks, so during
    # market hours the feed would go stale between tests and trip the STALE_FEED kill switch
    proc = SidecarProcess(pg_settings, port, SIDECAR_TOKEN,
                          extra_env={"QUANT_RISK__STALE_FEED_S": "86400"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


# -- the execution stages' tests: a sidecar of the module's own for past sessions -------------
@pytest.fixture(scope="module")
def replay_sidecar(pg_settings: Settings) -> Iterator:
    """A risk sidecar process of the test module's own, whose feed counts a past session's
    prices as fresh (``replaying_sidecar``).

    Module scope: one process per test module (the approved client order ids it remembers
    stay within the module), stopped after the module's last test.
    """
    from quant.testing.db import execute
    from quant.testing.sidecar_process import replaying_sidecar

    # the sidecar restores its last state from the kill-switch events: a module's own starts
    # ACTIVE whatever another module's sidecar tripped (the table refuses row deletes: it is
    # an audit trail; truncating it is the test database's reset)
    execute(pg_settings, "truncate ops.kill_switch_events")
    with replaying_sidecar(pg_settings, "replay-sidecar-token") as proc:
        yield proc


@pytest.fixture()
def replay_settings(clean_db: Settings, replay_sidecar) -> Settings:  # noqa: ANN001
    """The emptied database's settings, checking orders with the module's ``replay_sidecar``."""
    from pydantic import SecretStr

    return clean_db.model_copy(
        update={"sidecar_url": replay_sidecar.url, "sidecar_token": SecretStr(replay_sidecar.token)}
    )


@pytest.fixture()
def dag_id() -> str:
    """A DAG id of the test's own: fresh client order ids (the sidecar remembers approved ones)."""
    import uuid

    return f"dag_{uuid.uuid4().hex[:8]}"


# -- synthetic markets as frames (no database) and small model settings, for the model tests ---
@pytest.fixture(scope="session")
def signal_market() -> object:
    """Features and labels of 80 names with the planted short-term reversal at strength 0.1."""
    from quant.testing.marts import market_frames

    return market_frames(0.1)


@pytest.fixture(scope="session")
def null_market() -> object:
    """Features and labels of 80 names with no predictable component."""
    from quant.testing.marts import market_frames

    return market_frames(0.0)


@pytest.fixture(scope="session")
def model_settings() -> object:
    """Small validation folds and leaves for 80 names and about 420 sessions."""
    from quant.config import ModelSettings

    return ModelSettings(
        validation_sessions=40,
        min_data_in_leaf=50,
        max_feature_null_share=0.5,
        num_boost_round=200,
    )


# -- the real Airflow stack (`quant up`), shared by the scheduler suite and the browser test ----
@pytest.fixture(scope="session")
def airflow_stack(pg_settings: Settings) -> Iterator:
    """`quant up` in a QUANT_HOME of its own, the DAG unpaused; stopped at the end.

    The scheduler creates the latest session's scheduled run as soon as the DAG is
    unpaused (catchup is off, so only that one).
    """
    from quant.testing.airflow_stack import AirflowStack

    stack = AirflowStack(Path(tempfile.mkdtemp(prefix="qt-stack-", dir="/tmp")),
                         sidecar_token="stack-sidecar-token")
    try:
        stack.start()
        stack.unpause()
        yield stack
    finally:
        stack.stop()
        stack.remove()


@pytest.fixture(scope="session")
def failed_run(airflow_stack) -> object:  # noqa: ANN001
    """A daily_trading run that failed its data-quality gate under the real scheduler.

    Session D (six sessions before the latest) gets a NaN close for one symbol, the
    run for D is triggered through the REST API with D's logical date and waits to
    fail; the bar is put back afterwards so later runs see clean data.
    """
    from types import SimpleNamespace

    from quant.calendar import get_calendar
    from quant.db import connect
    from quant.orchestration import logical_datetime

    stack = airflow_stack
    settings = stack.settings
    import time

    deadline = time.monotonic() + 300
    while not stack.runs() and time.monotonic() < deadline:
        time.sleep(3)  # the scheduler creates the latest session's run after the unpause
    for run in stack.runs():  # the scheduled run of the latest session ingests the history
        stack.wait_for(run["dag_run_id"])
    cal = get_calendar(settings.exchange)
    latest = cal.latest_closed_session()
    session = cal.sessions(latest - timedelta(days=30), latest)[-7]
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select symbol, close from raw.bars where date = %s order by symbol limit 1",
                        (session,))
            symbol, close = cur.fetchone()
            cur.execute("update raw.bars set close = 'NaN' where symbol = %s and date = %s",
                        (symbol, session))
        run_id = stack.trigger(logical_date=logical_datetime(session, settings).isoformat())
        state = stack.wait_for(run_id)
    finally:
        if "close" in locals():
            with conn, conn.cursor() as cur:
                cur.execute("update raw.bars set close = %s where date = %s and close = 'NaN'",
                            (close, session))
        conn.close()
    return SimpleNamespace(dag_id=stack.dag_id, run_id=run_id, session=session, state=state,
                           symbol=symbol)
