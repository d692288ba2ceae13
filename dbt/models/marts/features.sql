{#- Point-in-time features per (symbol, session). Every window is a trailing frame over
    the name's own sessions ending at the current row; cross-sectional features use only
    rows of the same session. Windows that are not full yield null. Definitions are in
    _marts__models.yml. -#}
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

{%- set annualise = "sqrt(252.0)" %}

with

prices as (

    select * from {{ ref('int_prices_adjusted') }}
    where session_date <= {{ run_date() }}
    {% if is_incremental() %}
        and session_date >= {{ incremental_start() }} - {{ var('feature_history_days') }}
    {% endif %}

),

universe as (

    select * from {{ ref('universe') }}
    where session_date <= {{ run_date() }}
    {% if is_incremental() %}
        and session_date >= {{ incremental_start() }} - {{ var('feature_history_days') }}
    {% endif %}

),

market as (

    select
        universe.session_date,
        avg(prices.total_return order by prices.symbol) as market_return
    from universe
    inner join prices
        on prices.symbol = universe.symbol and prices.session_date = universe.session_date
    where universe.is_tradable and prices.total_return is not null
    group by universe.session_date

),

base as (

    select
        prices.symbol,
        prices.session_date,
        universe.sector,
        coalesce(universe.is_tradable, false) as is_in_universe,
        prices.adj_close_usd,
        prices.adj_high_usd,
        prices.adj_low_usd,
        prices.total_return,
        prices.log_return,
        ln(nullif(prices.adj_volume_shares, 0)) as log_volume,
        ln(nullif(prices.dollar_volume_usd, 0)) as log_dollar_volume,
        prices.dollar_volume_usd,
        prices.adj_volume_shares,
        market.market_return,
        prices.adj_close_usd - lag(prices.adj_close_usd) over (
            partition by prices.symbol order by prices.session_date
        ) as price_change_usd
    from prices
    left join universe
        on universe.symbol = prices.symbol and universe.session_date = prices.session_date
    left join market on market.session_date = prices.session_date

),

windowed as (

    select
        symbol,
        session_date,
        sector,
        is_in_universe,
        market_return,
        total_return,
        adj_close_usd,
        lag(adj_close_usd, 5) over own as adj_close_5d_ago,
        lag(adj_close_usd, 21) over own as adj_close_21d_ago,
        lag(adj_close_usd, 63) over own as adj_close_63d_ago,
        lag(adj_close_usd, 126) over own as adj_close_126d_ago,
        lag(adj_close_usd, 252) over own as adj_close_252d_ago,
        count(log_return) over w20 as n_returns_20,
        stddev_samp(log_return) over w20 as sd_return_20,
        sqrt(avg(power(least(log_return, 0), 2)) over w20) as downside_rms_20,
        count(log_return) over w60 as n_returns_60,
        stddev_samp(log_return) over w60 as sd_return_60,
        sqrt(avg(power(least(log_return, 0), 2)) over w60) as downside_rms_60,
        count(log_volume) over w20 as n_volume_20,
        log_volume,
        avg(log_volume) over w20 as mean_log_volume_20,
        stddev_samp(log_volume) over w20 as sd_log_volume_20,
        log_dollar_volume,
        avg(log_dollar_volume) over w20 as mean_log_dollar_volume_20,
        stddev_samp(log_dollar_volume) over w20 as sd_log_dollar_volume_20,
        avg(dollar_volume_usd) over w20 as adv_20_usd,
        avg(adj_volume_shares) over w5 as mean_volume_5,
        avg(adj_volume_shares) over w20 as mean_volume_20,
        count(adj_close_usd) over w20 as n_prices_20,
        avg(adj_close_usd) over w20 as ma_20,
        stddev_pop(adj_close_usd) over w20 as sd_price_20,
        count(adj_close_usd) over w50 as n_prices_50,
        avg(adj_close_usd) over w50 as ma_50,
        count(adj_close_usd) over w200 as n_prices_200,
        avg(adj_close_usd) over w200 as ma_200,
        count(adj_close_usd) over w63 as n_prices_63,
        max(adj_high_usd) over w63 as high_63,
        min(adj_low_usd) over w63 as low_63,
        count(price_change_usd) over w14 as n_changes_14,
        sum(greatest(price_change_usd, 0)) over w14 as gains_14,
        sum(abs(price_change_usd)) over w14 as moves_14,
        regr_count(total_return, market_return) over w60 as n_pairs_60,
        regr_slope(total_return, market_return) over w60 as slope_60,
        regr_sxx(total_return, market_return) over w60 as sxx_60,
        regr_syy(total_return, market_return) over w60 as syy_60,
        regr_sxy(total_return, market_return) over w60 as sxy_60,
        corr(total_return, market_return) over w60 as corr_60
    from base
    window
        own as (partition by symbol order by session_date),
        w5 as ({{ trailing(5) }}),
        w14 as ({{ trailing(14) }}),
        w20 as ({{ trailing(20) }}),
        w50 as ({{ trailing(50) }}),
        w60 as ({{ trailing(60) }}),
        w63 as ({{ trailing(63) }}),
        w200 as ({{ trailing(200) }})

),

features as (

    select
        symbol,
        session_date,
        sector,
        is_in_universe,
        market_return as market_return_1d,
        adj_close_usd / nullif(adj_close_21d_ago, 0) - 1 as momentum_21d,
        adj_close_usd / nullif(adj_close_63d_ago, 0) - 1 as momentum_63d,
        adj_close_usd / nullif(adj_close_126d_ago, 0) - 1 as momentum_126d,
        adj_close_usd / nullif(adj_close_252d_ago, 0) - 1 as momentum_252d,
        adj_close_21d_ago / nullif(adj_close_63d_ago, 0) - 1 as momentum_63d_skip_21d,
        adj_close_21d_ago / nullif(adj_close_126d_ago, 0) - 1 as momentum_126d_skip_21d,
        adj_close_21d_ago / nullif(adj_close_252d_ago, 0) - 1 as momentum_12_1,
        -total_return as reversal_1d,
        -(adj_close_usd / nullif(adj_close_5d_ago, 0) - 1) as reversal_5d,
        case when n_returns_20 = 20 then sd_return_20 * {{ annualise }} end as volatility_20d,
        case when n_returns_60 = 60 then sd_return_60 * {{ annualise }} end as volatility_60d,
        case when n_returns_20 = 20 then downside_rms_20 * {{ annualise }} end
            as downside_volatility_20d,
        case when n_returns_60 = 60 then downside_rms_60 * {{ annualise }} end
            as downside_volatility_60d,
        case when n_returns_60 = 60 then sd_return_20 / nullif(sd_return_60, 0) end
            as volatility_ratio_20d_60d,
        -- a constant series has no outliers: its z-score is 0, not undefined
        case when n_volume_20 = 20 then
            case when sd_log_volume_20 < 1e-9 then 0.0
                else (log_volume - mean_log_volume_20) / sd_log_volume_20 end
        end as volume_zscore_20d,
        case when n_volume_20 = 20 then
            case when sd_log_dollar_volume_20 < 1e-9 then 0.0
                else (log_dollar_volume - mean_log_dollar_volume_20) / sd_log_dollar_volume_20 end
        end as dollar_volume_zscore_20d,
        case when n_volume_20 = 20 then ln(nullif(adv_20_usd, 0)) end as log_adv_20d_usd,
        case when n_volume_20 = 20 then mean_volume_5 / nullif(mean_volume_20, 0) - 1 end
            as volume_ratio_5d_20d,
        case when n_prices_20 = 20
            then (adj_close_usd - (ma_20 - 2 * sd_price_20)) / nullif(4 * sd_price_20, 0)
        end as bollinger_pct_b_20d,
        -- clamped: the two sums round independently and may cross by an ulp
        case when n_changes_14 = 14 then least(100.0, 100 * gains_14 / nullif(moves_14, 0)) end
            as rsi_14d,
        case when n_prices_20 = 20 then adj_close_usd / nullif(ma_20, 0) - 1 end as distance_ma_20d,
        case when n_prices_50 = 50 then adj_close_usd / nullif(ma_50, 0) - 1 end as distance_ma_50d,
        case when n_prices_200 = 200 then adj_close_usd / nullif(ma_200, 0) - 1 end as distance_ma_200d,
        case when n_prices_50 = 50 then ma_20 / nullif(ma_50, 0) - 1 end as ma_20d_50d_spread,
        case when n_prices_63 = 63 then adj_close_usd / nullif(high_63, 0) - 1 end as distance_high_63d,
        case when n_prices_63 = 63 then adj_close_usd / nullif(low_63, 0) - 1 end as distance_low_63d,
        case when n_pairs_60 = 60 then slope_60 end as beta_60d,
        case when n_pairs_60 = 60
            then sqrt(greatest(syy_60 - sxy_60 * sxy_60 / nullif(sxx_60, 0), 0) / 58) * {{ annualise }}
        end as residual_volatility_60d,
        case when n_pairs_60 = 60 then corr_60 end as market_correlation_60d
    from windowed

),

{%- set ranked_features = [
    'momentum_12_1', 'momentum_63d', 'reversal_5d', 'volatility_60d', 'beta_60d',
    'residual_volatility_60d', 'log_adv_20d_usd', 'rsi_14d',
] %}

cross_sectional as (

    select
        features.*,
        case when is_in_universe then
            momentum_63d - avg(momentum_63d) filter (where is_in_universe) over same_sector
        end as sector_relative_momentum_63d,
        case when is_in_universe then
            momentum_12_1 - avg(momentum_12_1) filter (where is_in_universe) over same_sector
        end as sector_relative_momentum_12_1
        {%- for name in ranked_features %},
        case when is_in_universe and {{ name }} is not null then
            percent_rank() over (
                partition by session_date, is_in_universe and {{ name }} is not null
                order by {{ name }}
            )
        end as {{ name }}_rank
        {%- endfor %}
    from features
    window same_sector as (
        -- a fixed summation order: the same row set always gives the same bits
        partition by session_date, sector order by symbol
        rows between unbounded preceding and unbounded following
    )

),

final as (

    select * from cross_sectional
    {% if is_incremental() %}
        where session_date >= {{ incremental_start() }}
    {% endif %}

)

select * from final
