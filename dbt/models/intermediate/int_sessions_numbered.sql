{#- The sessions seen in the data up to run_date, numbered in order (1 = first). -#}

with

bars as (

    select * from {{ ref('int_bars_deduplicated') }}
    where session_date <= {{ run_date() }}

),

sessions as (

    select distinct session_date from bars

),

final as (

    select
        session_date,
        row_number() over (order by session_date)::integer as session_index
    from sessions

)

select * from final
