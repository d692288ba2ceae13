{#- The session date the build is "as of": var('run_date'), default today. -#}
{% macro run_date() -%}
    '{{ var("run_date", modules.datetime.date.today().isoformat()) }}'::date
{%- endmacro %}


{#- Provider ranks from var('provider_priority') ("csv,synthetic"): a values list
    (provider, provider_rank); unlisted providers get no rank and sort after, by name. -#}
{% macro provider_priority_values() -%}
    {%- set raw = var("provider_priority", "") -%}
    {%- set names = (raw if raw is not string else raw.split(",")) | map("trim") | reject("equalto", "") | list -%}
    select * from (values
        {%- for name in names %}
        ('{{ name | replace("'", "''") }}'::text, {{ loop.index }}){{ "," if not loop.last }}
        {%- endfor %}
        {%- if not names %}
        (null::text, null::integer)
        {%- endif %}
    ) as priority (provider, provider_rank)
{%- endmacro %}


{#- First session an incremental build of this model rebuilds: the lookback before
    run_date, or the day after the last built session if that is earlier (gap fill).
    Without rows at or before run_date, everything. -#}
{% macro incremental_start(lookback_days=none) -%}
    {%- set days = lookback_days if lookback_days is not none else var("incremental_lookback_days") -%}
    least(
        {{ run_date() }} - {{ days }},
        (select coalesce(max(session_date) + 1, '1900-01-01'::date)
         from {{ this }} where session_date <= {{ run_date() }})
    )
{%- endmacro %}


{#- A trailing window over a symbol's own history: only rows at or before the current one. -#}
{% macro trailing(n) -%}
    partition by symbol order by session_date rows between {{ n - 1 }} preceding and current row
{%- endmacro %}


{#- Pre-hook of the incremental models: rows dated after run_date are removed, so the
    table always holds what a full build as of run_date would hold (a backfill of an
    earlier session never leaves later, unknowable rows for downstream tasks). -#}
{% macro delete_after_run_date() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where session_date > {{ run_date() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
