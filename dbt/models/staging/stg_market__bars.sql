with

source as (

    select * from {{ source('market', 'bars') }}

),

renamed as (

    select
        symbol || '|' || date::text || '|' || provider as bar_id,
        symbol,
        date as session_date,
        provider,
        open::double precision as open_usd,
        high::double precision as high_usd,
        low::double precision as low_usd,
        close::double precision as close_usd,
        volume::bigint as volume_shares,
        ingested_at
    from source

),

final as (

    select * from renamed

)

select * from final
