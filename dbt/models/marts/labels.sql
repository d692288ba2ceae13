{#- Forward total returns per (symbol, session) over var label_horizons sessions of the
    name's own bars, from the point-in-time adjusted close, with the session each
    horizon ends (label_end_date_<h>d) so training can purge overlapping samples.
    A label is null until its end session is known (<= run_date). Never joined into
    features.

    open_return_<h>d is the return the book can trade on a score of session D: bought at
    the open of the next session (D+1, where orders fill) and sold at the open h sessions
    later, from the adjusted open; open_label_end_date_<h>d is the session of that later
    open (D+1+h), for var ic_horizons. -#}
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

prices as (

    select * from {{ ref('int_prices_adjusted') }}
    where session_date <= {{ run_date() }}
    {% if is_incremental() %}
        and session_date >= {{ incremental_start(var('label_lookback_days')) }}
    {% endif %}

),

final as (

    select
        symbol,
        session_date,
        {%- for h in var('label_horizons') %}
        lead(adj_close_usd, {{ h }}) over own_sessions / nullif(adj_close_usd, 0) - 1
            as forward_return_{{ h }}d,
        lead(session_date, {{ h }}) over own_sessions as label_end_date_{{ h }}d,
        {%- endfor %}
        {%- for h in var('ic_horizons') %}
        lead(adj_open_usd, {{ h + 1 }}) over own_sessions
            / nullif(lead(adj_open_usd, 1) over own_sessions, 0) - 1 as open_return_{{ h }}d,
        lead(session_date, {{ h + 1 }}) over own_sessions
            as open_label_end_date_{{ h }}d{{ "," if not loop.last }}
        {%- endfor %}
    from prices
    window own_sessions as (partition by symbol order by session_date)

)

select * from final
