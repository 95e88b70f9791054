{#- Cast any value to the engine's string type (for labels, keys and messages). -#}
{% macro as_text(expr) %}
    cast({{ expr }} as {{ dbt.type_string() }})
{% endmacro %}
