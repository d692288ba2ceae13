{#- Fails on every date after the build's run_date: nothing may come from the future. -#}
{% test not_in_future(model, column_name) %}

select *
from {{ model }}
where {{ column_name }} > {{ run_date() }}

{% endtest %}
