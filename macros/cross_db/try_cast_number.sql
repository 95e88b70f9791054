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

{#- PostgreSQL has no try_cast: numbers by pattern, and inf, infinity and nan (any case, signed) as
    the double precision input reads them, so non-finite values are caught as such, not as text. -#}
{% macro postgres__try_cast_number(expr) %}
    case
        when trim(cast({{ expr }} as text)) ~ '^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$'
            or trim(cast({{ expr }} as text)) ~* '^[-+]?(inf|infinity|nan)$'
            then cast(trim(cast({{ expr }} as text)) as double precision)
    end
{% endmacro %}
