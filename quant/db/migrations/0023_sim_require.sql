-- A check inside a statement: true when ``ok``, else an error with SQLSTATE ``code`` and
-- ``message``. The simulator checks what a write did in the statement itself, so that
-- the COMMIT can travel with it (one round trip fewer per call, which a backtest makes
-- thousands of); codes of class QS are the simulator's.
create or replace function ops.sim_require(ok boolean, code text, message text)
returns boolean
language plpgsql
as $$
begin
    if ok is not true then
        raise exception using errcode = code, message = message;
    end if;
    return true;
end
$$;
