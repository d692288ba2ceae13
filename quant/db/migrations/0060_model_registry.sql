-- The model registry, champion history, retrain decisions and daily predictions.

-- Every trained model: what it learned from, how it validated, where its artifact is.
create table if not exists ops.models (
    model_id           bigserial        primary key,
    trained_through    date             not null,
    horizon_sessions   integer          not null check (horizon_sessions > 0),
    objective          text             not null,
    target             text             not null,
    params             jsonb            not null,
    num_boost_round    integer          not null check (num_boost_round > 0),
    features           text[]           not null,
    feature_hash       text             not null,
    metrics            jsonb            not null,
    validation_rank_ic double precision,
    reference          jsonb            not null default '{}'::jsonb,
    train_rows         integer          not null,
    train_sessions     integer          not null,
    artifact_path      text             not null,
    artifact_checksum  text             not null,
    status             text             not null default 'challenger'
        check (status in ('champion', 'challenger', 'retired')),
    created_at         timestamptz      not null default now(),
    unique (trained_through, artifact_checksum)
);
create index if not exists models_trained_through_idx on ops.models (trained_through);
create unique index if not exists models_one_champion_idx on ops.models (status)
    where status = 'champion';

-- Champion history: from session promoted_on on, model_id scores the universe (until a
-- later promotion). Predictions for a session use the latest promotion on or before it.
create table if not exists ops.model_promotions (
    promoted_on        date        not null,
    model_id           bigint      not null references ops.models (model_id),
    replaced_model_id  bigint      references ops.models (model_id),
    reason             text        not null,
    created_at         timestamptz not null default now(),
    primary key (promoted_on, model_id)
);

-- What the retrain stage decided for each session, and why (one row per session; a rerun
-- replaces it).
create table if not exists ops.retrain_decisions (
    session_date       date        primary key,
    run_id             text,
    action             text        not null check (action in ('retrained', 'skipped')),
    reason             text        not null,
    model_id           bigint      references ops.models (model_id),
    champion_model_id  bigint      references ops.models (model_id),
    champion_changed   boolean     not null default false,
    details            jsonb       not null default '{}'::jsonb,
    decided_at         timestamptz not null default now()
);

-- Scores of the session's universe from the champion; a rerun replaces the session's rows.
create table if not exists ops.predictions (
    session_date  date             not null,
    symbol        text             not null,
    score         double precision not null,
    model_id      bigint           not null references ops.models (model_id),
    run_id        text,
    created_at    timestamptz      not null default now(),
    primary key (session_date, symbol)
);
create index if not exists predictions_model_idx on ops.predictions (model_id);
