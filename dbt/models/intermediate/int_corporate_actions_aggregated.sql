{#- One row per (symbol, ex_date) known at run_date: the combined split factor and the
    dividend, each from the best-ranked provider. -#}

with

actions as (

    select * from {{ ref('stg_market__corporate_actions') }}
    where ex_date <= {{ run_date() }}

),

priority as (

    {{ provider_priority_values() }}

),

ranked as (

    select
        actions.*,
        row_number() over (
            partition by actions.symbol, actions.ex_date, actions.action_type
            order by priority.provider_rank nulls last, actions.provider
        ) as provider_choice
    from actions
    left join priority on priority.provider = actions.provider

),

aggregated as (

    select
        symbol,
        ex_date,
        coalesce(max(split_ratio) filter (where action_type = 'split'), 1.0) as split_factor,
        coalesce(sum(dividend_usd) filter (where action_type = 'dividend'), 0.0) as dividend_usd,
        bool_or(action_type = 'split') as is_split,
        bool_or(action_type = 'dividend') as is_dividend
    from ranked
    where provider_choice = 1
    group by symbol, ex_date

),

final as (

    select
        symbol || '|' || ex_date::text as corporate_action_day_id,
        *
    from aggregated

)

select * from final
