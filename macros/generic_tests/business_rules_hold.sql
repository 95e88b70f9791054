{#- Fails with one row per (record, broken rule): the declared business rules (var ss_synth_rules)
    and every outcome's range, integrality and levels (var ss_outcomes). Null answers (item
    nonresponse) break no range or level check; a rule's consequence must hold, so null fails it. -#}
{% test business_rules_hold(model) %}

{%- set checks = [] -%}
{%- for rule in var('ss_synth_rules', []) or [] -%}
    {%- set when = [] -%}
    {%- for col, values in rule.when.items() -%}
        {%- set lits = [] -%}{%- for v in values %}{% do lits.append(surveysynth.sql_literal(v)) %}{% endfor -%}
        {%- do when.append(surveysynth.ident(col) ~ ' in (' ~ lits | join(', ') ~ ')') -%}
    {%- endfor -%}
    {%- for name, cons in rule.then.items() -%}
        {%- set col = surveysynth.ident(name) -%}
        {%- if 'is_null' in cons -%}
            {%- set fails = col ~ ' is not null' -%}
        {%- elif 'equals' in cons -%}
            {%- set fails = col ~ ' is null or ' ~ col ~ ' <> ' ~ surveysynth.sql_literal(cons.equals) -%}
        {%- else -%}
            {%- set lits = [] -%}{%- for v in cons['in'] %}{% do lits.append(surveysynth.sql_literal(v)) %}{% endfor -%}
            {%- set fails = col ~ ' is null or ' ~ col ~ ' not in (' ~ lits | join(', ') ~ ')' -%}
        {%- endif -%}
        {%- do checks.append({'rule': rule.name, 'column': col, 'cond': '(' ~ when | join(' and ') ~ ') and (' ~ fails ~ ')'}) -%}
    {%- endfor -%}
{%- endfor -%}
{%- for name, spec in surveysynth.outcomes().items() -%}
    {%- if spec.type in ('continuous', 'count') -%}
        {%- if spec.get('min') is not none -%}
            {%- do checks.append({'rule': surveysynth.ident_name(name) ~ ':min', 'column': name, 'cond': name ~ ' < ' ~ spec.min}) -%}
        {%- endif -%}
        {%- if spec.get('max') is not none -%}
            {%- do checks.append({'rule': surveysynth.ident_name(name) ~ ':max', 'column': name, 'cond': name ~ ' > ' ~ spec.max}) -%}
        {%- endif -%}
        {%- if spec.type == 'count' -%}
            {%- do checks.append({'rule': surveysynth.ident_name(name) ~ ':integer', 'column': name, 'cond': name ~ ' <> floor(' ~ name ~ ')'}) -%}
        {%- endif -%}
    {%- else -%}
        {%- set levels = spec.levels if spec.type != 'binary' else [0, 1] -%}
        {%- set lits = [] -%}{%- for v in levels %}{% do lits.append(surveysynth.sql_literal(v)) %}{% endfor -%}
        {%- do checks.append({'rule': surveysynth.ident_name(name) ~ ':levels', 'column': name, 'cond': name ~ ' is not null and ' ~ name ~ ' not in (' ~ lits | join(', ') ~ ')'}) -%}
    {%- endif -%}
{%- endfor %}

with records as (

    select * from {{ model }}

),

validation_errors as (

    {% for check in checks -%}
    select
        unit_id,
        wave,
        implicate,
        {{ surveysynth.sql_literal(check.rule) }} as rule,
        {{ surveysynth.sql_literal(surveysynth.ident_name(check.column)) }} as rule_column
    from records
    where {{ check.cond }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

)

select * from validation_errors

{% endtest %}
