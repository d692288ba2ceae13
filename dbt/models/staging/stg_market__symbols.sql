with

source as (

    select * from {{ source('market', 'symbols') }}

),

renamed as (

    select
        symbol || '|' || provider as symbol_provider_id,
        symbol,
        provider,
        sector,
        listed_at::date as listing_date,
        delisted_at::date as delisting_date,
        ingested_at
    from source

),

final as (

    select * from renamed

)

select * from final
