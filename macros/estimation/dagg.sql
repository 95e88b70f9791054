{#- An aggregate (sum, avg, var_samp, stddev_samp) whose floating-point result does not depend on
    the order the engine meets the rows in.

    DuckDB aggregates in parallel and combines the threads' partial results in whatever order
    they finish, so a plain sum of doubles can differ in its last bits from one run to the next,
    and so can every estimate, interval and grade computed from it. Aggregating the values in
    ascending order fixes the order of the additions: the same multiset of values always gives
    the same bits. Used as a call block so that the aggregated expression may hold Jinja:
        {% call surveysynth.dagg() %}w * y{% endcall %}          -- sum
        {% call surveysynth.dagg('avg') %}y{% endcall %}
    or, inside a Jinja expression, surveysynth.dagg('sum', 'w * y').
    Other engines aggregate as usual (their results equal DuckDB's to rounding). -#}
{% macro dagg(fn='sum', expr=none) -%}
    {{- adapter.dispatch('dagg', 'surveysynth')(fn, caller() if expr is none else expr) -}}
{%- endmacro %}

{% macro default__dagg(fn, expr) -%}
    {{ fn }}({{ expr }})
{%- endmacro %}

{% macro duckdb__dagg(fn, expr) -%}
    {{ fn }}({{ expr }} order by {{ expr }})
{%- endmacro %}
