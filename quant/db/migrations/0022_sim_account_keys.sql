-- The simulator's orders and fills without foreign keys: SimBroker's own statements keep
-- what the keys checked, and the checks cost about half of an auction's database time
-- (three key lookups per fill, one per order).
-- - The account of an order or fill exists: every SimBroker write takes the account's
--   row lock first and fails when there is none, and nothing deletes an account.
-- - A fill's order exists: an auction inserts its fills joined to the orders the same
--   statement updates, in the same account, and fails unless every fill found its
--   order (stricter than the key, which accepted any account's order).
-- Rewinding an account deletes its fills before their orders, as before.
alter table ops.sim_orders drop constraint if exists sim_orders_account_fkey;
alter table ops.sim_fills drop constraint if exists sim_fills_account_fkey;
alter table ops.sim_fills drop constraint if exists sim_fills_order_id_fkey;
