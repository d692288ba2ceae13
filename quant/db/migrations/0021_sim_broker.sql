-- The built-in simulator broker (quant.execution.SimBroker): one row set per account.

create table if not exists ops.sim_accounts (
    account     text             primary key,
    cash_usd    double precision not null,
    created_at  timestamptz      not null default now(),
    updated_at  timestamptz      not null default now()
);

create table if not exists ops.sim_orders (
    order_id           text             primary key,
    account            text             not null references ops.sim_accounts (account),
    client_order_id    text             not null,
    symbol             text             not null,
    side               text             not null check (side in ('buy', 'sell')),
    qty_shares         double precision not null check (qty_shares > 0),
    filled_qty_shares  double precision not null default 0 check (filled_qty_shares >= 0),
    order_type         text             not null check (order_type in ('market', 'limit')),
    time_in_force      text             not null check (time_in_force in ('day', 'opg', 'cls')),
    limit_price_usd    double precision,
    reduce_only        boolean          not null default false,
    strategy           text,
    status             text             not null
        check (status in ('open', 'partially_filled', 'filled', 'cancelled', 'rejected')),
    status_reason      text,
    submitted_at       timestamptz      not null default now(),
    updated_at         timestamptz      not null default now(),
    unique (account, client_order_id),
    check (filled_qty_shares <= qty_shares)
);
create index if not exists sim_orders_live_idx on ops.sim_orders (account)
    where status in ('open', 'partially_filled');

create table if not exists ops.sim_fills (
    fill_id          bigserial        primary key,
    account          text             not null references ops.sim_accounts (account),
    order_id         text             not null references ops.sim_orders (order_id),
    client_order_id  text             not null,
    symbol           text             not null,
    side             text             not null check (side in ('buy', 'sell')),
    qty_shares       double precision not null check (qty_shares > 0),
    price_usd        double precision not null check (price_usd > 0),
    commission_usd   double precision not null check (commission_usd >= 0),
    filled_at        timestamptz      not null
);
create index if not exists sim_fills_account_at_idx on ops.sim_fills (account, filled_at);

create table if not exists ops.sim_positions (
    account           text             not null references ops.sim_accounts (account),
    symbol            text             not null,
    qty_shares        double precision not null,
    avg_price_usd     double precision not null,
    market_price_usd  double precision not null,
    updated_at        timestamptz      not null default now(),
    primary key (account, symbol)
);
