-- Execution (quant.execution): the broker chosen per run, orders, fills, the pipeline's
-- own positions, and reconciliation breaks.

-- One row per (order namespace, logical date): the broker and account the run's orders go to.
create table if not exists ops.execution_runs (
    namespace       text             not null,
    logical_date    date             not null,
    run_id          text             not null,
    dag_id          text             not null,
    run_type        text             not null,
    broker          text             not null check (broker in ('sim', 'alpaca', 'ibkr')),
    account         text             not null,
    trading_mode    text             not null check (trading_mode in ('paper', 'live')),
    risk_check      text             not null check (risk_check in ('sidecar', 'in_process')),
    choice_reason   text             not null,
    dry_run         boolean          not null default false,
    equity_usd      double precision not null,
    cash_usd        double precision not null,
    created_at      timestamptz      not null default now(),
    updated_at      timestamptz      not null default now(),
    primary key (namespace, logical_date)
);

-- Every order the pipeline generated; client_order_id is what the broker de-duplicates on.
create table if not exists ops.orders (
    client_order_id     text             primary key,
    namespace           text             not null,
    logical_date        date             not null,
    run_id              text             not null,
    dag_id              text             not null,
    symbol              text             not null,
    side                text             not null check (side in ('buy', 'sell')),
    qty_shares          double precision not null check (qty_shares > 0),
    ref_price_usd       double precision not null check (ref_price_usd > 0),
    notional_usd        double precision not null,
    order_type          text             not null check (order_type in ('market', 'limit')),
    time_in_force       text             not null check (time_in_force in ('day', 'opg', 'cls')),
    limit_price_usd     double precision,
    target_weight       double precision not null,
    target_qty_shares   double precision not null,
    current_qty_shares  double precision not null,
    adv_capped          boolean          not null default false,
    cash_capped         boolean          not null default false,
    sequence            integer          not null,
    broker              text             not null,
    account             text             not null,
    status              text             not null check (status in (
        'generated', 'approved', 'rejected', 'submitting', 'submitted', 'broker_rejected',
        'partially_filled', 'filled', 'cancelled')),
    reject_reasons      text[]           not null default '{}',
    reject_details      jsonb,
    broker_order_id     text,
    filled_qty_shares   double precision not null default 0,
    avg_fill_price_usd  double precision,
    created_at          timestamptz      not null default now(),
    checked_at          timestamptz,
    submitted_at        timestamptz,
    updated_at          timestamptz      not null default now(),
    unique (namespace, logical_date, symbol, side),
    foreign key (namespace, logical_date) references ops.execution_runs (namespace, logical_date)
);
create index if not exists orders_run_idx on ops.orders (namespace, logical_date, status);

-- Executions as the broker reported them (one row per broker fill id).
create table if not exists ops.fills (
    broker           text             not null,
    account          text             not null,
    fill_id          text             not null,
    order_id         text             not null,
    client_order_id  text             not null,
    symbol           text             not null,
    side             text             not null check (side in ('buy', 'sell')),
    qty_shares       double precision not null check (qty_shares > 0),
    price_usd        double precision not null check (price_usd > 0),
    commission_usd   double precision not null check (commission_usd >= 0),
    filled_at        timestamptz      not null,
    recorded_at      timestamptz      not null default now(),
    primary key (broker, account, fill_id)
);
create index if not exists fills_account_at_idx on ops.fills (broker, account, filled_at);

-- The pipeline's own book: positions implied by the fills it recorded.
create table if not exists ops.positions (
    broker          text             not null,
    account         text             not null,
    symbol          text             not null,
    qty_shares      double precision not null,
    avg_price_usd   double precision not null,
    updated_at      timestamptz      not null default now(),
    primary key (broker, account, symbol)
);

-- Position differences found by reconciliation; resolved_at is set when they match again.
create table if not exists ops.reconciliation_breaks (
    break_id             bigserial        primary key,
    broker               text             not null,
    account              text             not null,
    symbol               text             not null,
    logical_date         date             not null,
    run_id               text             not null,
    expected_qty_shares  double precision not null,
    broker_qty_shares    double precision not null,
    locked               boolean          not null,
    lock_error           text,
    detected_at          timestamptz      not null default now(),
    resolved_at          timestamptz,
    resolved_run_id      text
);
create index if not exists reconciliation_breaks_open_idx
    on ops.reconciliation_breaks (broker, account, symbol) where resolved_at is null;
