"""A throwaway QUANT_HOME for benchmarks and experiments: its own embedded PostgreSQL
(:mod:`quant.db`'s :func:`~quant.db.scratch_home`, here for the tests and ``bench/``)."""

from quant.db._scratch import scratch_environment, scratch_home

__all__ = ["scratch_environment", "scratch_home"]
