"""The run context every stage takes: one session's run, its settings and what it runs with."""

from quant.pipeline.context import (
    DEFAULT_DAG_ID,
    PretrainedSource,
    RunContext,
    run_context,
)

__all__ = ["DEFAULT_DAG_ID", "PretrainedSource", "RunContext", "run_context"]
