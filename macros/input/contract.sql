{#- Accessors for the input contract, so models never read raw vars directly. -#}

{% macro cell_dims() %}
    {{ return(var('ss_cell_dims')) }}
{% endmacro %}

{% macro outcomes() %}
    {{ return(var('ss_outcomes')) }}
{% endmacro %}

{% macro frame_auxiliaries() %}
    {%- set aux = var('ss_frame_auxiliaries', []) -%}
    {{ return(aux if aux is not none else []) }}
{% endmacro %}

{% macro has_frame() %}
    {%- set f = var('ss_frame', none) -%}
    {{ return(f is not none and (f | string | trim) != '') }}
{% endmacro %}

{#- The cell key: the cell dimensions as text joined with '|', in the order of ss_cell_dims. -#}
{% macro cell_id_expr(alias='') %}
    {%- set prefix = (alias ~ '.') if alias else '' -%}
    {%- set parts = [] -%}
    {%- for d in surveysynth.cell_dims() -%}
        {%- if not loop.first -%}{%- do parts.append("'|'") -%}{%- endif -%}
        {%- do parts.append(surveysynth.as_text(prefix ~ d)) -%}
    {%- endfor -%}
    {{ dbt.concat(parts) }}
{% endmacro %}

{#- Indicator names and their SQL value expressions for one outcome, shared by every estimate.
    Numeric outcomes give one indicator (the value); categorical, ordinal and binary outcomes give
    one 0/1 indicator per level, named '<column>=<level>' as in demo_truth. -#}
{% macro outcome_indicators(name, spec, alias='') %}
    {%- set col = ((alias ~ '.') if alias else '') ~ name -%}
    {%- set out = [] -%}
    {%- if spec.type in ('continuous', 'count') -%}
        {%- do out.append({'indicator': name, 'outcome': name, 'expr': 'cast(' ~ col ~ ' as ' ~ surveysynth.type_double() ~ ')', 'kind': 'mean'}) -%}
    {%- else -%}
        {%- set levels = spec.levels if spec.type != 'binary' else [0, 1] -%}
        {%- for lv in levels -%}
            {%- do out.append({
                'indicator': name ~ '=' ~ lv,
                'outcome': name,
                'expr': 'case when ' ~ col ~ ' is null then null when ' ~ col ~ ' = ' ~ surveysynth.sql_literal(lv) ~ ' then 1.0 else 0.0 end',
                'kind': 'share'}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(out) }}
{% endmacro %}
