-- The risk sidecar's persistent state: the kill-switch log, overrides, equity peaks.

-- Every trading-state change and kill-switch action, append only. The sidecar
-- restores its state from the latest row at start.
create table if not exists ops.kill_switch_events (
    event_id     bigserial   primary key,
    at           timestamptz not null default now(),
    kind         text        not null
        check (kind in ('kill', 'auto_kill', 'resume', 'restore', 'fail_closed',
                        'override', 'cancel', 'flatten')),
    from_state   text        not null check (from_state in ('ACTIVE', 'REDUCING', 'HALTED')),
    to_state     text        not null check (to_state in ('ACTIVE', 'REDUCING', 'HALTED')),
    mode         text        check (mode in ('halt', 'reduce', 'flatten')),
    reason_code  text        not null,
    reason       text        not null,
    actor        text        not null,
    details      jsonb       not null default '{}'::jsonb
);
create index if not exists kill_switch_events_at_idx on ops.kill_switch_events (at);

create or replace function ops.kill_switch_events_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'ops.kill_switch_events is append-only (% refused)', tg_op;
end
$$;

drop trigger if exists kill_switch_events_append_only on ops.kill_switch_events;
create trigger kill_switch_events_append_only
    before update or delete on ops.kill_switch_events
    for each row execute function ops.kill_switch_events_append_only();

-- Current per-symbol / per-strategy overrides (each change is also an event above).
create table if not exists ops.risk_overrides (
    scope             text             not null check (scope in ('symbol', 'strategy')),
    key               text             not null,
    size_multiplier   double precision not null default 1.0 check (size_multiplier >= 0),
    reduce_only       boolean          not null default false,
    trading_disabled  boolean          not null default false,
    reason            text             not null,
    set_by            text             not null,
    set_at            timestamptz      not null default now(),
    primary key (scope, key)
);

-- Start-of-day and peak equity per session, for the daily-loss and drawdown limits.
create table if not exists ops.risk_days (
    session          date             primary key,
    sod_equity_usd   double precision not null,
    peak_equity_usd  double precision not null,
    updated_at       timestamptz      not null default now()
);
