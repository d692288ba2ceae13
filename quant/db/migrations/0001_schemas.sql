-- Schemas of the system of record: raw (as ingested) and ops (what the pipeline did).
create schema if not exists raw;
create schema if not exists ops;

-- Daily bars exactly as a provider delivered them (unadjusted prices).
create table if not exists raw.bars (
    symbol       text             not null,
    date         date             not null,
    provider     text             not null,
    open         double precision not null,
    high         double precision not null,
    low          double precision not null,
    close        double precision not null,
    volume       bigint           not null,
    ingested_at  timestamptz      not null default now(),
    primary key (symbol, date, provider)
);
create index if not exists bars_date_idx on raw.bars (date);

-- Every earlier version of a bar that a later ingestion corrected: nothing ingested is lost.
create table if not exists raw.bar_revisions (
    symbol       text             not null,
    date         date             not null,
    provider     text             not null,
    open         double precision,
    high         double precision,
    low          double precision,
    close        double precision,
    volume       bigint,
    ingested_at  timestamptz      not null,
    superseded_at timestamptz     not null default now()
);
create index if not exists bar_revisions_key_idx on raw.bar_revisions (symbol, date, provider);

create or replace function raw.keep_bar_revision() returns trigger
language plpgsql as $$
begin
    insert into raw.bar_revisions (symbol, date, provider, open, high, low, close, volume, ingested_at)
    values (old.symbol, old.date, old.provider, old.open, old.high, old.low, old.close, old.volume,
            old.ingested_at);
    return new;
end;
$$;

drop trigger if exists bars_keep_revision on raw.bars;
create trigger bars_keep_revision
    before update on raw.bars
    for each row execute function raw.keep_bar_revision();

-- Symbols with sector and listing / delisting dates.
create table if not exists raw.symbols (
    symbol       text        not null,
    provider     text        not null,
    sector       text        not null,
    listed_at    date,
    delisted_at  date,
    ingested_at  timestamptz not null default now(),
    primary key (symbol, provider)
);

-- Splits and cash dividends, by ex-date.
create table if not exists raw.corporate_actions (
    symbol        text             not null,
    ex_date       date             not null,
    action_type   text             not null check (action_type in ('split', 'dividend')),
    provider      text             not null,
    split_ratio   double precision,
    dividend_usd  double precision,
    ingested_at   timestamptz      not null default now(),
    primary key (symbol, ex_date, action_type, provider)
);

-- One row per ingestion call: what was asked, what came from where.
create table if not exists ops.ingestions (
    ingestion_id  bigserial   primary key,
    logical_date  date        not null,
    provider      text        not null,
    start_date    date        not null,
    end_date      date        not null,
    rows_received integer     not null,
    rows_changed  integer     not null,
    started_at    timestamptz not null,
    finished_at   timestamptz not null default now()
);

-- One row per pipeline run (DAG run or CLI run): status and summary for the run report.
create table if not exists ops.pipeline_runs (
    run_id        text        primary key,
    dag_id        text        not null,
    logical_date  date        not null,
    run_type      text        not null,
    status        text        not null,
    summary       jsonb       not null default '{}'::jsonb,
    started_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create index if not exists pipeline_runs_date_idx on ops.pipeline_runs (logical_date);
