{#- Fails on every row where the SQL expression is false (an accounting identity). -#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
