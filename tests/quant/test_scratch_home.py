"""scratch_home: a benchmark's QUANT_HOME is its own and leaves nothing behind."""

from __future__ import annotations

import os

import pytest

from quant.testing.scratch_home import scratch_environment, scratch_home


def test_scratch_home_when_block_ends_then_environment_back_and_directory_gone(monkeypatch):
    monkeypatch.setenv("QUANT_PROVIDER", "csv")
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:pw@db/quant")
    monkeypatch.setenv("AIRFLOW_HOME", "/somewhere")
    before = dict(os.environ)

    with scratch_home("qtest-", QUANT_SYNTHETIC__SYMBOLS="7") as home:
        assert home.is_dir()
        assert os.environ["QUANT_HOME"] == str(home)
        assert os.environ["QUANT_SYNTHETIC__SYMBOLS"] == "7"
        assert "QUANT_PROVIDER" not in os.environ
        assert "DATABASE_URL" not in os.environ
        assert "AIRFLOW_HOME" not in os.environ
        (home / "file").write_text("x")

    assert not home.exists()
    assert dict(os.environ) == before


def test_scratch_home_when_block_raises_then_cleaned_up_all_the_same():
    before = dict(os.environ)
    with pytest.raises(RuntimeError), scratch_home("qtest-") as home:
        raise RuntimeError("boom")
    assert not home.exists()
    assert dict(os.environ) == before


def test_scratch_environment_when_built_then_own_variables_only(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANT_BROKER", "alpaca")
    monkeypatch.setenv("DBT_PROFILES_DIR", "/x")
    env = scratch_environment(tmp_path, QUANT_EXCHANGE="XNYS")
    assert env["QUANT_HOME"] == str(tmp_path)
    assert env["QUANT_EXCHANGE"] == "XNYS"
    assert "QUANT_BROKER" not in env and "DBT_PROFILES_DIR" not in env
    assert env["PATH"] == os.environ["PATH"]
