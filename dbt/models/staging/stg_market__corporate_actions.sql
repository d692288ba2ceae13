with

source as (

    select * from {{ source('market', 'corporate_actions') }}

),

renamed as (

    select
        symbol || '|' || ex_date::text || '|' || action_type || '|' || provider as corporate_action_id,
        symbol,
        ex_date::date as ex_date,
        action_type,
        provider,
        split_ratio::double precision as split_ratio,
        dividend_usd::double precision as dividend_usd,
        ingested_at
    from source

),

final as (

    select * from renamed

)

select * from final
