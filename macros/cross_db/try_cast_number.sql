{#- Cast to double, giving null (not an error) where the text is not a number. -#}
{% macro try_cast_number(expr) %}
    {{ return(adapter.dispatch('try_cast_number', 'surveysynth')(expr)) }}
{% endmacro %}

{% macro default__try_cast_number(expr) %}
    try_cast({{ expr }} as {{ surveysynth.type_double() }})
{% endmacro %}

{% macro spark__try_cast_number(expr) %}
    try_cast({{ expr }} as double)
{% endmacro %}

{% macro postgres__try_cast_number(expr) %}
    case
        when trim(cast({{ expr }} as text)) ~ '^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$'
            then cast(trim(cast({{ expr }} as text)) as double precision)
    end
{% endmacro %}
