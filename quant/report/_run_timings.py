"""The timings of a run: wall seconds of the run and of each stage, and the report's timings section."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from quant.report._html import empty, kv_table, rows_table, section
from quant.report._plots import bar_figure
from quant.report._run_data import as_utc_text

__all__ = ["TASK_ORDER", "stage_wall_seconds", "timings_from", "timings_section", "wall_seconds"]

TASK_ORDER = (
    "ingest_bars",
    "dbt",
    "data_quality",
    "retrain_model",
    "predict",
    "optimize_portfolio",
    "generate_orders",
    "pretrade_check",
    "submit_orders",
    "reconcile",
    "report",
)
"""Tasks of the daily DAG in pipeline order (``dbt`` stands for every ``dbt.*`` task)."""


def _task_rank(task_id: str) -> tuple[int, str]:
    head = _stage_of(task_id)
    return (TASK_ORDER.index(head) if head in TASK_ORDER else len(TASK_ORDER), task_id)


def _stage_of(task_id: str) -> str:
    """The stage a task belongs to: its group (``dbt`` for ``dbt.*``) or itself."""
    return task_id.split(".", 1)[0].split("[", 1)[0]


def _instant(value: Any) -> datetime | None:
    """A task's start or end as an aware UTC datetime (ISO-8601 text or datetime; None stays None)."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _span(entries: list[Mapping[str, Any]]) -> tuple[datetime | None, datetime | None]:
    starts = [s for s in (_instant(e.get("start")) for e in entries) if s is not None]
    ends = [e for e in (_instant(x.get("end")) for x in entries) if e is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


def wall_seconds(timings: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Seconds from the earliest task start to the latest task end; None when unknown.

    Tasks that ran in parallel count once: this is elapsed time, not a sum of task
    durations. ``timings`` maps task id to ``{"state", "seconds", "start", "end"}``
    (start and end ISO-8601 UTC text or datetimes, either may be None).
    """
    first, last = _span(list(timings.values()))
    if first is None or last is None:
        if len(timings) == 1:  # one task: its own duration is the wall time
            only = next(iter(timings.values())).get("seconds")
            return None if only is None else float(only)
        return None
    return max(0.0, (last - first).total_seconds())


def stage_wall_seconds(timings: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """Wall seconds of each stage in pipeline order (the ``dbt.*`` tasks form one stage)."""
    grouped: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for task_id, entry in timings.items():
        grouped[_stage_of(task_id)][task_id] = entry
    return {stage: wall_seconds(grouped[stage]) for stage in sorted(grouped, key=_task_rank)}


def _utc_text(value: Any) -> str:
    moment = _instant(value)
    return "" if moment is None else as_utc_text(moment.astimezone(timezone.utc))


def timings_section(timings: Mapping[str, Mapping[str, Any]], note: str) -> str:
    if not timings:
        return section("timings", "Timings", empty(note))
    tasks = sorted(timings, key=_task_rank)
    stages = stage_wall_seconds(timings)
    known = {s: v for s, v in stages.items() if v is not None}
    parts = []
    if known:
        parts.append(bar_figure(
            list(known), list(known.values()), ylabel="seconds",
            caption="Wall time per stage, first task start to last task end (tasks of a stage "
                    "that ran in parallel count once).",
        ))
    first, last = _span(list(timings.values()))
    run_wall = wall_seconds(timings)
    parts.append(kv_table({
        "wall time (seconds)": run_wall if run_wall is not None else "unknown (no start and end times)",
        "first task started": _utc_text(first),
        "last task ended": _utc_text(last),
        "tasks": len(tasks),
    }))
    parts.append(f'<p class="meta">{html.escape(note)}</p>')
    grouped: dict[str, list[str]] = defaultdict(list)
    for task_id in tasks:
        grouped[_stage_of(task_id)].append(task_id)
    parts.append("<h3>Stages</h3>" + rows_table(
        ["stage", "tasks", "wall seconds", "start", "end"],
        [(stage, len(grouped[stage]),
          stages[stage] if stages[stage] is not None else "unknown",
          *(_utc_text(x) for x in _span([timings[t] for t in grouped[stage]])))
         for stage in stages],
        css="stages",
    ))
    parts.append("<h3>Tasks</h3>" + rows_table(
        ["task", "state", "seconds", "start", "end"],
        [(t, timings[t].get("state"), timings[t].get("seconds"),
          _utc_text(timings[t].get("start")), _utc_text(timings[t].get("end"))) for t in tasks],
        css="tasks",
    ))
    return section("timings", "Timings", "".join(parts))


def timings_from(
    stages: Mapping[str, Mapping[str, Any]],
    task_timings: Mapping[str, Mapping[str, Any]] | None,
) -> tuple[dict[str, dict[str, Any]], str]:
    """Task timings: as passed (Airflow's), else the stages' own."""
    if task_timings:
        timings = {k: dict(v) for k, v in task_timings.items()}
        if any(v.get("state") == "running" for v in timings.values()):  # the DAG's report task
            return timings, ("Durations recorded by Airflow for the tasks finished when the "
                             "report was written (the report task itself is still running).")
        return timings, "Durations recorded by Airflow."
    own = {name: {"state": "success", "seconds": float(s["seconds"]), "start": None, "end": None}
           for name, s in stages.items()
           if isinstance(s, Mapping) and isinstance(s.get("seconds"), (int, float))}
    if own:
        return own, "Durations the stages measured themselves."
    return {}, "No task timings available (the report was written outside an Airflow task)."
