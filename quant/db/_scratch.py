"""A throwaway QUANT_HOME for benchmarks and experiments: its own embedded PostgreSQL.

The benchmarks in ``bench/`` and ``quant bench sidecar`` run in one; tests import
it as :mod:`quant.testing.scratch_home`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["scratch_environment", "scratch_home"]

_CLEARED = ("QUANT_", "AIRFLOW", "DBT_")


def scratch_environment(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without the pipeline's variables, on ``home``.

    ``QUANT_*``, ``AIRFLOW*``, ``DBT_*`` and ``DATABASE_URL`` are left out (so
    nothing of the user's own set-up reaches the scratch run); ``QUANT_HOME``
    is ``home`` and ``extra`` is added. For a child process's ``env``.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(_CLEARED) and k != "DATABASE_URL"
    }
    return env | {"QUANT_HOME": str(home)} | extra


@contextmanager
def scratch_home(prefix: str = "qscratch-", **extra: str) -> Iterator[Path]:
    """A new QUANT_HOME under the temporary directory, this process's for the block.

    Inside the block ``os.environ`` is :func:`scratch_environment` (with
    ``extra``); after it, what it was before. The embedded PostgreSQL started
    under the home is stopped and the directory removed, whatever happened.
    """
    home = Path(tempfile.mkdtemp(prefix=prefix))
    saved = dict(os.environ)
    scratch = scratch_environment(home, **extra)
    os.environ.clear()
    os.environ.update(scratch)
    try:
        yield home
    finally:
        from quant.db._embedded import stop_embedded

        try:
            stop_embedded(home / "pgdata")
        finally:
            os.environ.clear()
            os.environ.update(saved)
            shutil.rmtree(home, ignore_errors=True)
