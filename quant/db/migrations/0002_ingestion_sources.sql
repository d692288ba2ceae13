-- What each ingestion loaded and where every symbol's bars came from (failover chains).
alter table ops.ingestions add column if not exists rows_inserted integer not null default 0;
alter table ops.ingestions add column if not exists rows_updated integer not null default 0;
alter table ops.ingestions add column if not exists sessions_fetched integer not null default 0;
alter table ops.ingestions add column if not exists provider_errors jsonb not null default '{}'::jsonb;

-- One row per symbol served in an ingestion: the provider that delivered its bars and the
-- providers of the chain tried before it that did not.
create table if not exists ops.ingestion_sources (
    ingestion_id       bigint  not null references ops.ingestions (ingestion_id),
    symbol             text    not null,
    provider           text    not null,
    rows_received      integer not null,
    first_date         date    not null,
    last_date          date    not null,
    skipped_providers  text[]  not null default '{}',
    primary key (ingestion_id, symbol)
);
create index if not exists ingestion_sources_symbol_idx on ops.ingestion_sources (symbol, provider);
