"""The model registry (ops.models), champion history and model artifacts on disk."""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quant.exceptions import ModelArtifactError
from quant.model._train import TrainedModel

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

__all__ = [
    "ModelRecord",
    "champion_as_of",
    "clear_promotions",
    "get_model",
    "latest_model_before",
    "load_artifact",
    "load_booster",
    "record_promotion",
    "refresh_statuses",
    "register_model",
    "save_artifact",
]


@dataclass(frozen=True)
class ModelRecord:
    """One row of ops.models (``artifact_path`` is relative to ``settings.models_dir``)."""

    model_id: int
    trained_through: date
    horizon_sessions: int
    objective: str
    target: str
    params: dict[str, Any]
    num_boost_round: int
    features: tuple[str, ...]
    feature_hash: str
    metrics: dict[str, Any]
    validation_rank_ic: float | None
    reference: dict[str, Any]
    artifact_path: str
    artifact_checksum: str
    status: str


_COLUMNS = (
    "model_id, trained_through, horizon_sessions, objective, target, params, num_boost_round, "
    "features, feature_hash, metrics, validation_rank_ic, reference, artifact_path, "
    "artifact_checksum, status"
)


def _record(row: tuple) -> ModelRecord:
    return ModelRecord(
        model_id=int(row[0]),
        trained_through=row[1],
        horizon_sessions=int(row[2]),
        objective=row[3],
        target=row[4],
        params=row[5],
        num_boost_round=int(row[6]),
        features=tuple(row[7]),
        feature_hash=row[8],
        metrics=row[9],
        validation_rank_ic=row[10],
        reference=row[11],
        artifact_path=row[12],
        artifact_checksum=row[13],
        status=row[14],
    )


def artifact_name(model: TrainedModel) -> str:
    """File name of a model's artifact: trained-through date and checksum prefix."""
    return f"model-{model.as_of.isoformat()}-h{model.horizon_sessions}-{model.checksum[:16]}.txt"


def save_artifact(model: TrainedModel, models_dir: Path) -> Path:
    """Write the model's text artifact under ``models_dir`` (atomically; kept if identical).

    Returns
    -------
    Path
        The artifact file.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / artifact_name(model)
    if path.is_file() and _sha256(path) == model.checksum:
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(model.model_text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_artifact(path: Path, checksum: str) -> str:
    """The model text at ``path``, after checking its SHA-256.

    Raises
    ------
    ModelArtifactError
        The file is missing or its checksum differs from the registry's.
    """
    if not path.is_file():
        raise ModelArtifactError(f"model artifact {path} is missing")
    data = path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != checksum:
        raise ModelArtifactError(
            f"model artifact {path} has checksum {found[:16]}..., the registry has {checksum[:16]}..."
        )
    return data.decode("utf-8")


_BOOSTERS: OrderedDict[tuple[str, str, int, int], Any] = OrderedDict()
"""Parsed artifacts by path, checksum, size and modification time; most recently used last."""

_BOOSTERS_KEPT = 4


def load_booster(path: Path, checksum: str) -> Any:
    """The LightGBM booster of the artifact at ``path``, parsed once per artifact.

    The first call for an artifact reads it and checks its SHA-256
    (:func:`load_artifact`); later calls with the same path and checksum
    return the same booster while the file's size and modification time
    are unchanged (the last few artifacts are kept).

    Raises
    ------
    ModelArtifactError
        The file is missing or its checksum differs from the registry's.
    """
    import lightgbm as lgb

    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ModelArtifactError(f"model artifact {path} is missing") from None
    key = (str(path), checksum, stat.st_size, stat.st_mtime_ns)
    booster = _BOOSTERS.get(key)
    if booster is None:
        booster = lgb.Booster(model_str=load_artifact(path, checksum))
        _BOOSTERS[key] = booster
        while len(_BOOSTERS) > _BOOSTERS_KEPT:
            _BOOSTERS.popitem(last=False)
    else:
        _BOOSTERS.move_to_end(key)
    return booster


def register_model(conn: PgConnection, model: TrainedModel, artifact_path: str) -> tuple[int, bool]:
    """Insert the model into ops.models unless the same artifact is registered for its date.

    Returns
    -------
    (model_id, created)
        ``created`` is False when an identical model (same trained-through
        date and checksum) already had a row, which is reused.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            insert into ops.models (
                trained_through, horizon_sessions, objective, target, params, num_boost_round,
                features, feature_hash, metrics, validation_rank_ic, reference, train_rows,
                train_sessions, artifact_path, artifact_checksum
            )
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (trained_through, artifact_checksum) do nothing
            returning model_id
            """,
            (
                model.as_of,
                model.horizon_sessions,
                model.params["objective"],
                model.target,
                json.dumps(model.params, sort_keys=True),
                model.num_boost_round,
                list(model.features),
                model.feature_hash,
                json.dumps(model.metrics, sort_keys=True),
                model.rank_ic,
                json.dumps(model.reference, sort_keys=True),
                model.train_rows,
                model.train_sessions,
                artifact_path,
                model.checksum,
            ),
        )
        row = cur.fetchone()
        if row is not None:
            return int(row[0]), True
        cur.execute(
            "select model_id from ops.models where trained_through = %s and artifact_checksum = %s",
            (model.as_of, model.checksum),
        )
        return int(cur.fetchone()[0]), False


def get_model(conn: PgConnection, model_id: int) -> ModelRecord:
    """The ops.models row of ``model_id`` (KeyError if there is none)."""
    with conn.cursor() as cur:
        cur.execute(f"select {_COLUMNS} from ops.models where model_id = %s", (model_id,))
        row = cur.fetchone()
    if row is None:
        raise KeyError(model_id)
    return _record(row)


def champion_as_of(
    conn: PgConnection, session: date, *, inclusive: bool = True
) -> ModelRecord | None:
    """The champion for ``session``: the latest promotion on (or, not inclusive, before) it."""
    op = "<=" if inclusive else "<"
    with conn.cursor() as cur:
        cur.execute(
            f"""
            select model_id from ops.model_promotions
            where promoted_on {op} %s
            order by promoted_on desc, created_at desc, model_id desc
            limit 1
            """,
            (session,),
        )
        row = cur.fetchone()
    return None if row is None else get_model(conn, int(row[0]))


def latest_model_before(conn: PgConnection, session: date) -> ModelRecord | None:
    """The newest model trained before ``session``, whatever its status (None if none)."""
    with conn.cursor() as cur:
        cur.execute(
            "select model_id from ops.models where trained_through < %s "
            "order by trained_through desc, model_id desc limit 1",
            (session,),
        )
        row = cur.fetchone()
    return None if row is None else get_model(conn, int(row[0]))


def clear_promotions(conn: PgConnection, session: date) -> int:
    """Delete the promotions made on ``session`` (a rerun decides again); return how many."""
    with conn.cursor() as cur:
        cur.execute("delete from ops.model_promotions where promoted_on = %s", (session,))
        return cur.rowcount


def record_promotion(
    conn: PgConnection,
    session: date,
    model_id: int,
    replaced_model_id: int | None,
    reason: str,
) -> None:
    """Make ``model_id`` the champion from ``session`` on."""
    with conn.cursor() as cur:
        cur.execute(
            """
            insert into ops.model_promotions (promoted_on, model_id, replaced_model_id, reason)
            values (%s, %s, %s, %s)
            on conflict (promoted_on, model_id) do update
            set replaced_model_id = excluded.replaced_model_id, reason = excluded.reason
            """,
            (session, model_id, replaced_model_id, reason),
        )


def refresh_statuses(conn: PgConnection) -> int | None:
    """Set ops.models.status from the promotions; return the current champion's id.

    The model of the latest promotion is ``champion``, other models ever
    promoted are ``retired``, models never promoted are ``challenger``.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            select model_id from ops.model_promotions
            order by promoted_on desc, created_at desc, model_id desc limit 1
            """
        )
        row = cur.fetchone()
        champion = None if row is None else int(row[0])
        # only rows whose status changes are written; the champion last (one champion at a time)
        cur.execute(
            """
            update ops.models m set status = w.status
            from (
                select o.model_id, case when exists (
                    select 1 from ops.model_promotions p where p.model_id = o.model_id
                ) then 'retired' else 'challenger' end as status
                from ops.models o
                where o.model_id is distinct from %s
            ) w
            where m.model_id = w.model_id and m.status <> w.status
            """,
            (champion,),
        )
        if champion is not None:
            cur.execute(
                "update ops.models set status = 'champion' "
                "where model_id = %s and status <> 'champion'",
                (champion,),
            )
    return champion
