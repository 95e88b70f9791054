{#- `expr` rounded to two significant figures (0 stays 0): the coarse band edges of the release.
    Whole powers of ten multiply or divide, so an edge is the double nearest its decimal (1.4, not
    14 x 0.1 = 1.4000000000000001). -#}
{% macro round_significant(expr) %}
    {%- set e = 'floor(log10(abs(' ~ expr ~ '))) - 1' -%}
    case
        when {{ expr }} = 0 then 0
        when {{ e }} >= 0 then round({{ expr }} / power(10, {{ e }})) * power(10, {{ e }})
        else round({{ expr }} * power(10, -({{ e }}))) / power(10, -({{ e }}))
    end
{% endmacro %}

{#- A band edge as text: whole numbers without decimals ('120000'), others in plain decimals, trailing
    zeros trimmed ('1.4', '0.0035'). -#}
{% macro band_edge_text(expr) %}
    case
        when {{ expr }} = floor({{ expr }}) and abs({{ expr }}) < 1e15
            then {{ surveysynth.as_text('cast(' ~ expr ~ ' as bigint)') }}
        else trim(trailing '0' from {{ surveysynth.number_as_text(expr, 8) }})
    end
{% endmacro %}
