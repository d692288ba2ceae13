-- Corporate events of a broker account, owned by the ledger (quant.ledger): the splits,
-- cash dividends and closings (delisted or dead symbols) the simulator applied to a
-- position, one row per (account, symbol, session, event type). With the fills, they
-- explain the account's cash and positions: cash_usd is the signed cash the event moved
-- (a dividend, cash in lieu of a split's fractional share, a closing's proceeds).
create table if not exists ops.corporate_events (
    event_id               bigserial        primary key,
    broker                 text             not null,
    account                text             not null,
    symbol                 text             not null,
    session_date           date             not null,
    event_type             text             not null
        check (event_type in ('split', 'dividend', 'delisting', 'dead_symbol')),
    -- when the event took effect: the session's open (splits, dividends, before its
    -- opening auction) or its close (closings, after the auctions)
    effective_at           timestamptz      not null,
    split_ratio            double precision check (split_ratio > 0),
    dividend_usd           double precision,
    price_usd              double precision,
    qty_before_shares      double precision not null,
    qty_after_shares       double precision not null,
    avg_price_before_usd   double precision not null,
    avg_price_after_usd    double precision not null,
    cash_usd               double precision not null,
    -- live orders of the symbol as they were before a split scaled them, or a closing
    -- cancelled them: [{client_order_id, qty_shares, filled_qty_shares, limit_price_usd}]
    orders_before          jsonb            not null default '[]'::jsonb,
    detail                 text,
    recorded_at            timestamptz      not null default now(),
    unique (broker, account, symbol, session_date, event_type)
);
create index if not exists corporate_events_account_idx
    on ops.corporate_events (broker, account, session_date);

-- The simulator looks up a session's corporate actions by ex-date.
create index if not exists corporate_actions_ex_date_idx on raw.corporate_actions (ex_date);
