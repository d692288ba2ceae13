{#- One bar per (symbol, session): the bar of the best-ranked provider
    (var provider_priority, then alphabetical). -#}
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

    select * from {{ ref('stg_market__bars') }}
    where session_date <= {{ run_date() }}
    {% if is_incremental() %}
        and session_date >= {{ incremental_start() }}
    {% endif %}

),

priority as (

    {{ provider_priority_values() }}

),

ranked as (

    select
        bars.*,
        row_number() over (
            partition by bars.symbol, bars.session_date
            order by priority.provider_rank nulls last, bars.provider
        ) as provider_choice
    from bars
    left join priority on priority.provider = bars.provider

),

final as (

    select
        symbol,
        session_date,
        provider,
        open_usd,
        high_usd,
        low_usd,
        close_usd,
        volume_shares,
        close_usd * volume_shares as dollar_volume_usd,
        ingested_at
    from ranked
    where provider_choice = 1

)

select * from final
