"""reused_connections: stages keep opening and closing connections, the logins are saved."""

from __future__ import annotations

from quant.db import connect, reused_connections
from quant.pipeline import run_context


def test_connect_when_inside_block_then_closed_connection_handed_out_again(pg_settings):
    with reused_connections() as pool:
        first = pool.connect(pg_settings)
        pid = first.get_backend_pid()
        first.close()
        second = pool.connect(pg_settings)
        try:
            assert second is first
            assert second.get_backend_pid() == pid
            assert not second.closed
        finally:
            second.close()


def test_connect_when_two_open_at_once_then_two_sessions(pg_settings):
    with reused_connections() as pool:
        a, b = pool.connect(pg_settings), pool.connect(pg_settings)
        try:
            assert a.get_backend_pid() != b.get_backend_pid()
        finally:
            a.close()
            b.close()


def test_give_back_when_work_uncommitted_and_settings_changed_then_both_gone(pg_settings):
    with reused_connections() as pool:
        conn = pool.connect(pg_settings)
        with conn.cursor() as cur:
            cur.execute("set statement_timeout = 4321")
            cur.execute("create temp table reuse_probe (x int)")
            cur.execute("insert into reuse_probe values (1)")
        conn.close()  # nothing committed
        again = pool.connect(pg_settings)
        try:
            assert again is conn
            with again.cursor() as cur:
                cur.execute("show statement_timeout")
                assert cur.fetchone()[0] == "0"
                cur.execute("select to_regclass('pg_temp.reuse_probe')")
                assert cur.fetchone()[0] is None
        finally:
            again.close()


def test_block_end_when_connections_idle_then_really_closed(pg_settings):
    with reused_connections() as pool:
        conn = pool.connect(pg_settings)
        conn.close()
        run = run_context("2024-01-02", settings=pg_settings, connections=pool)
        with run.transaction() as tx:
            assert tx is conn
    assert conn.closed


def test_connect_when_outside_block_then_new_session_each_time(pg_settings):
    with reused_connections():
        first = connect(pg_settings)  # the pool hands out only its own connections
        pid = first.get_backend_pid()
        first.close()
        second = connect(pg_settings)
        try:
            assert first.closed
            assert second.get_backend_pid() != pid
        finally:
            second.close()
