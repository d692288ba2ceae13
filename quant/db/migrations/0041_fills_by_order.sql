-- The fills of one order: reconcile averages each order's fill prices after every session,
-- and an account's fills grow with every session a backtest or backfill runs.
create index if not exists fills_order_idx on ops.fills (broker, account, client_order_id);
