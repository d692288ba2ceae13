{#- Tradable names per session, point in time. A name is tradable at session t when
    it is listed at t (listing_date <= t < delisting_date: a name is excluded from its
    delisting session on), its close is at least var universe_min_price_usd, its average
    dollar volume over the last var universe_adv_sessions of its sessions (a full
    window) is at least var universe_min_adv_usd, and it has traded for at least
    var universe_min_history_sessions market sessions. Names stay in history until
    their delisting: no survivorship bias. -#}
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

{%- set adv_sessions = var('universe_adv_sessions') | int %}

with

prices as (

    select * from {{ ref('int_prices_adjusted') }}
    where session_date <= {{ run_date() }}
    {% if is_incremental() %}
        and session_date >= {{ incremental_start() }} - {{ adv_sessions * 2 + 15 }}
    {% endif %}

),

all_bars as (

    select * from {{ ref('int_bars_deduplicated') }}
    where session_date <= {{ run_date() }}

),

sessions as (

    select * from {{ ref('int_sessions_numbered') }}

),

symbols as (

    select * from {{ ref('stg_market__symbols') }}

),

priority as (

    {{ provider_priority_values() }}

),

reference as (

    select distinct on (symbols.symbol)
        symbols.symbol,
        symbols.sector,
        symbols.listing_date,
        symbols.delisting_date
    from symbols
    left join priority on priority.provider = symbols.provider
    order by symbols.symbol, priority.provider_rank nulls last, symbols.provider

),

first_sessions as (

    select
        symbol,
        min(session_date) as first_session_date
    from all_bars
    group by symbol

),

windowed as (

    select
        symbol,
        session_date,
        close_usd,
        avg(dollar_volume_usd) over adv_window as adv_usd,
        count(dollar_volume_usd) over adv_window as adv_observations
    from prices
    window adv_window as ({{ trailing(adv_sessions) }})

),

joined as (

    select
        windowed.symbol,
        windowed.session_date,
        coalesce(reference.sector, 'Unknown') as sector,
        reference.listing_date,
        reference.delisting_date,
        windowed.close_usd,
        case when windowed.adv_observations = {{ adv_sessions }} then windowed.adv_usd end
            as adv_usd,
        current_session.session_index - first_session.session_index + 1 as history_sessions
    from windowed
    left join reference on reference.symbol = windowed.symbol
    inner join first_sessions on first_sessions.symbol = windowed.symbol
    inner join sessions as current_session on current_session.session_date = windowed.session_date
    inner join sessions as first_session
        on first_session.session_date = first_sessions.first_session_date

),

flagged as (

    select
        *,
        (listing_date is null or session_date >= listing_date)
            and (delisting_date is null or session_date < delisting_date) as is_listed,
        close_usd >= {{ var('universe_min_price_usd') }} as is_above_price_floor,
        coalesce(adv_usd >= {{ var('universe_min_adv_usd') }}, false) as is_liquid,
        history_sessions >= {{ var('universe_min_history_sessions') }} as has_enough_history
    from joined

),

final as (

    select
        *,
        is_listed and is_above_price_floor and is_liquid and has_enough_history as is_tradable
    from flagged
    {% if is_incremental() %}
        where session_date >= {{ incremental_start() }}
    {% endif %}

)

select * from final
