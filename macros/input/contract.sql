{#- Accessors for the input contract, so models never read raw vars directly.
    Column names come in two forms: *_names() gives the names as configured (for messages, labels
    and comparisons with other vars), the plain accessors give them as SQL identifiers
    (surveysynth.ident: quoted where the name is not a plain word, e.g. `size-band`), ready to
    write into SQL. For the demo's names the two are the same. -#}

{% macro cell_dim_names() %}
    {%- do surveysynth.require_contract() -%}
    {{ return(var('ss_cell_dims')) }}
{% endmacro %}

{% macro cell_dims() %}
    {%- do surveysynth.require_contract() -%}
    {{ return(surveysynth.idents(var('ss_cell_dims'))) }}
{% endmacro %}

{#- Outcome specs keyed by the configured name. -#}
{% macro outcome_specs() %}
    {%- do surveysynth.require_contract() -%}
    {{ return(var('ss_outcomes')) }}
{% endmacro %}

{#- Outcome specs keyed by identifier (same order). -#}
{% macro outcomes() %}
    {%- do surveysynth.require_contract() -%}
    {%- set out = {} -%}
    {%- for name, spec in var('ss_outcomes').items() %}{% do out.update({surveysynth.ident(name): spec}) %}{% endfor -%}
    {{ return(out) }}
{% endmacro %}

{% macro frame_auxiliary_names() %}
    {%- set aux = var('ss_frame_auxiliaries', []) -%}
    {{ return(aux if aux is not none else []) }}
{% endmacro %}

{% macro frame_auxiliaries() %}
    {{ return(surveysynth.idents(surveysynth.frame_auxiliary_names())) }}
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
    one 0/1 indicator per level, named '<column>=<level>' as in demo_truth. `name` is the outcome's
    name or identifier; the indicator is labelled with the name. -#}
{% macro outcome_indicators(name, spec, alias='') %}
    {%- set label = surveysynth.ident_name(name) -%}
    {%- set col = ((alias ~ '.') if alias else '') ~ surveysynth.ident(label) -%}
    {%- set out = [] -%}
    {%- if spec.type in ('continuous', 'count') -%}
        {%- do out.append({'indicator': label, 'outcome': label, 'expr': 'cast(' ~ col ~ ' as ' ~ surveysynth.type_double() ~ ')', 'kind': 'mean'}) -%}
    {%- else -%}
        {%- set levels = spec.levels if spec.type != 'binary' else [0, 1] -%}
        {%- for lv in levels -%}
            {%- do out.append({
                'indicator': label ~ '=' ~ lv,
                'outcome': label,
                'expr': 'case when ' ~ col ~ ' is null then null when ' ~ col ~ ' = ' ~ surveysynth.sql_literal(lv) ~ ' then 1.0 else 0.0 end',
                'kind': 'share'}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(out) }}
{% endmacro %}

{#- The column of population_cells holding the population total of a frame auxiliary (by name or
    identifier): total_<name>, as an identifier. -#}
{% macro aux_total_column(aux) %}
    {{ return(surveysynth.ident('total_' ~ surveysynth.ident_name(aux))) }}
{% endmacro %}

{#- Names joined for a label (margin ids, domain levels): the configured names, not identifiers. -#}
{% macro names_label(columns, sep) %}
    {%- set out = [] -%}
    {%- for c in columns %}{% do out.append(surveysynth.ident_name(c)) %}{% endfor -%}
    {{ return(out | join(sep)) }}
{% endmacro %}
