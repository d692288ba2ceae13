-- Data-quality support: per-bar checks, the quarantine view and the results table.

-- Every bar of [p_start, p_end] with the outcome of each row-level check. The
-- close-to-close return adds back the split ratio and cash dividend of the day, so a
-- corporate action does not look like a jump; its size is measured in multiples of the
-- name's volatility over the previous p_vol_sessions sessions (floored at p_min_vol).
create or replace function raw.bar_checks(
    p_start date,
    p_end date,
    p_vol_sessions integer default 20,
    p_min_vol double precision default 0.005
)
returns table (
    symbol text,
    date date,
    provider text,
    open double precision,
    high double precision,
    low double precision,
    close double precision,
    volume bigint,
    prices_finite boolean,
    prices_positive boolean,
    ohlc_consistent boolean,
    volume_non_negative boolean,
    duplicate_count integer,
    previous_close double precision,
    log_return double precision,
    recent_volatility double precision,
    jump_sigmas double precision,
    explained_by_action boolean
)
language sql stable as $$
    with actions as (
        select
            ca.symbol,
            ca.ex_date,
            max(ca.split_ratio) filter (where ca.action_type = 'split') as split_ratio,
            max(ca.dividend_usd) filter (where ca.action_type = 'dividend') as dividend_usd
        from raw.corporate_actions as ca
        where ca.ex_date between p_start - (p_vol_sessions * 2 + 15) and p_end
        group by ca.symbol, ca.ex_date
    ),
    bars as (
        select
            b.*,
            b.open not in ('NaN', 'Infinity', '-Infinity')
                and b.high not in ('NaN', 'Infinity', '-Infinity')
                and b.low not in ('NaN', 'Infinity', '-Infinity')
                and b.close not in ('NaN', 'Infinity', '-Infinity') as finite
        from raw.bars as b
        where b.date between p_start - (p_vol_sessions * 2 + 15) and p_end
    ),
    returns as (
        select
            bars.*,
            lag(bars.close) over w as prev_close,
            a.split_ratio,
            a.dividend_usd,
            count(*) over (partition by bars.symbol, bars.date) as dup_count
        from bars
        left join actions as a on a.symbol = bars.symbol and a.ex_date = bars.date
        window w as (partition by bars.symbol, bars.provider order by bars.date)
    ),
    logged as (
        select
            returns.*,
            case
                when finite and close > 0 and prev_close > 0
                     and prev_close not in ('NaN', 'Infinity')
                then ln((close * coalesce(split_ratio, 1) + coalesce(dividend_usd, 0)) / prev_close)
            end as log_ret
        from returns
    ),
    scored as (
        select
            logged.*,
            stddev_samp(log_ret) over (
                partition by logged.symbol, logged.provider order by logged.date
                rows between p_vol_sessions preceding and 1 preceding
            ) as vol
        from logged
    )
    select
        symbol,
        date,
        provider,
        open,
        high,
        low,
        close,
        volume,
        finite as prices_finite,
        finite and open > 0 and high > 0 and low > 0 and close > 0 as prices_positive,
        low <= open and low <= close and high >= open and high >= close as ohlc_consistent,
        volume >= 0 as volume_non_negative,
        dup_count::integer as duplicate_count,
        prev_close as previous_close,
        log_ret as log_return,
        vol as recent_volatility,
        abs(log_ret) / greatest(coalesce(vol, p_min_vol), p_min_vol) as jump_sigmas,
        split_ratio is not null or dividend_usd is not null as explained_by_action
    from scored
    where date between p_start and p_end
$$;

-- Bars that fail a row-level check, with the reasons (default thresholds). Bad rows are
-- never deleted from raw.bars: this view is where to find them.
create or replace view raw.quarantined_bars as
with checked as (
    select * from raw.bar_checks('1900-01-01', '9999-12-31')
),
reasons as (
    select
        checked.*,
        array_remove(array[
            case when not prices_finite then 'NON_FINITE_PRICE' end,
            case when prices_finite and not prices_positive then 'NON_POSITIVE_PRICE' end,
            case when not ohlc_consistent then 'OHLC_INCONSISTENT' end,
            case when not volume_non_negative then 'NEGATIVE_VOLUME' end,
            case when duplicate_count > 1 then 'DUPLICATE_BAR' end,
            case when jump_sigmas > 8 then 'UNEXPLAINED_JUMP' end
        ], null) as reasons
    from checked
)
select symbol, date, provider, open, high, low, close, volume, jump_sigmas, reasons
from reasons
where cardinality(reasons) > 0;

-- One row per expectation evaluated by a data-quality run.
create table if not exists ops.dq_results (
    run_id          text        not null,
    session_date    date        not null,
    suite           text        not null,
    check_name      text        not null,
    expectation     text        not null,
    severity        text        not null check (severity in ('blocking', 'warning')),
    success         boolean     not null,
    observed_value  jsonb,
    unexpected      jsonb       not null default '[]'::jsonb,
    checked_at      timestamptz not null default now(),
    primary key (run_id, check_name)
);
create index if not exists dq_results_session_idx on ops.dq_results (session_date);
