{#- Point-in-time total returns and forward-adjusted prices.

    total_return_t = (close_t * split_factor_t + dividend_t) / close_{t-1} - 1, with the
    split factor and dividend of the actions whose ex-date is t.

    adjustment_factor_t is the product over the name's actions with ex-date <= t of
    (split_factor + dividend / close on the ex-date): it never uses a later action, so
    adj_close_t = close_t * adjustment_factor_t is a cumulative total-return index in
    which adj_close_t / adj_close_{t-1} - 1 = total_return_t, and a split shows no jump. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['symbol', 'session_date'],
        pre_hook="{{ delete_after_run_date() }}",
        indexes=[
            {'columns': ['symbol', 'session_date'], 'unique': True},
            {'columns': ['session_date']},
        ],
    )
}}

with

bars as (

    select * from {{ ref('int_bars_deduplicated') }}
    where session_date <= {{ run_date() }}
    {% if is_incremental() %}
        -- the previous bar of the first rebuilt session must be in reach
        and session_date >= {{ incremental_start() }} - 45
    {% endif %}

),

action_days as (

    select * from {{ ref('int_corporate_actions_aggregated') }}

),

action_factors as (

    select
        action_days.symbol,
        action_days.ex_date,
        action_days.split_factor,
        action_days.split_factor + action_days.dividend_usd / ex_bars.close_usd as action_factor
    from action_days
    inner join {{ ref('int_bars_deduplicated') }} as ex_bars
        on ex_bars.symbol = action_days.symbol and ex_bars.session_date = action_days.ex_date
    where ex_bars.close_usd > 0

),

cumulative_factors as (

    select
        symbol,
        ex_date,
        exp(sum(ln(action_factor)) over actions_so_far) as adjustment_factor,
        exp(sum(ln(split_factor)) over actions_so_far) as cumulative_split_factor,
        lead(ex_date) over (partition by symbol order by ex_date) as next_ex_date
    from action_factors
    window actions_so_far as (
        partition by symbol order by ex_date rows between unbounded preceding and current row
    )

),

with_previous as (

    select
        bars.*,
        lag(session_date) over (partition by symbol order by session_date) as previous_session_date,
        lag(close_usd) over (partition by symbol order by session_date) as previous_close_usd
    from bars

),

joined as (

    select
        with_previous.*,
        coalesce(action_days.split_factor, 1.0) as split_factor,
        coalesce(action_days.dividend_usd, 0.0) as dividend_usd,
        coalesce(cumulative_factors.adjustment_factor, 1.0) as adjustment_factor,
        coalesce(cumulative_factors.cumulative_split_factor, 1.0) as cumulative_split_factor
    from with_previous
    left join action_days
        on action_days.symbol = with_previous.symbol
        and action_days.ex_date = with_previous.session_date
    left join cumulative_factors
        on cumulative_factors.symbol = with_previous.symbol
        and with_previous.session_date >= cumulative_factors.ex_date
        and (
            cumulative_factors.next_ex_date is null
            or with_previous.session_date < cumulative_factors.next_ex_date
        )

),

computed as (

    select
        symbol,
        session_date,
        provider,
        previous_session_date,
        open_usd,
        high_usd,
        low_usd,
        close_usd,
        previous_close_usd,
        volume_shares,
        dollar_volume_usd,
        split_factor,
        dividend_usd,
        (close_usd * split_factor + dividend_usd) / nullif(previous_close_usd, 0) - 1 as total_return,
        adjustment_factor,
        cumulative_split_factor,
        open_usd * adjustment_factor as adj_open_usd,
        high_usd * adjustment_factor as adj_high_usd,
        low_usd * adjustment_factor as adj_low_usd,
        close_usd * adjustment_factor as adj_close_usd,
        volume_shares / cumulative_split_factor as adj_volume_shares
    from joined

),

final as (

    select
        *,
        ln(1 + total_return) as log_return
    from computed
    {% if is_incremental() %}
        where session_date >= {{ incremental_start() }}
    {% endif %}

)

select * from final
