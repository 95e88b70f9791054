{#- The row-level validity checks of the responses, one entry per kind of problem.
    Each gives the name of a column of int_responses_checked that holds a readable reason
    (null when the row passes) and the SQL that computes it over the `numbered` CTE.
    quarantined_responses unpivots exactly these columns, so the two never drift apart.
    Names from vars reach the SQL as identifiers (ident) and the messages as literals (sql_literal). -#}
{% macro response_checks() %}
    {%- set checks = [] -%}
    {%- set lit = surveysynth.sql_literal -%}
    {%- set shown = surveysynth.shown_value -%}
    {%- do checks.append({'column': '_problem_unit_id', 'problem': 'missing_unit_id',
        'fix': "Check that var 'ss_unit_id' (" ~ var('ss_unit_id') ~ ") names the column of unit ids.",
        'reason': "case when unit_id is null then " ~ lit("unit id (" ~ var('ss_unit_id') ~ ") is missing") ~ " end"}) -%}
    {%- do checks.append({'column': '_problem_wave', 'problem': 'missing_wave',
        'fix': "Check that var 'ss_wave' (" ~ var('ss_wave') ~ ") names the column of waves.",
        'reason': "case when wave is null then " ~ lit("wave (" ~ var('ss_wave') ~ ") is missing") ~ " end"}) -%}
    {%- do checks.append({'column': '_problem_duplicate', 'problem': 'duplicate_unit_wave',
        'fix': "Check that var 'ss_wave' (" ~ var('ss_wave') ~ ") names the wave column and var 'ss_unit_id' ("
            ~ var('ss_unit_id') ~ ") the unit id, or deduplicate the responses (one row per unit x wave).",
        'reason': "case when unit_id is not null and wave is not null and _n_same_key > 1 then "
            ~ dbt.concat(["'unit '", shown("unit_id"), "' appears '", surveysynth.as_text("_n_same_key"), "' times in wave '", shown("wave")]) ~ " end"}) -%}
    {%- for d in surveysynth.cell_dim_names() -%}
        {%- set col = surveysynth.ident(d) -%}
        {%- do checks.append({'column': '_problem_cell_' ~ loop.index, 'problem': 'bad_cell_value',
            'fix': "Code column '" ~ d ~ "' (ss_cell_dims) in ss_responses as the population ("
                ~ ('ss_frame' if surveysynth.has_frame() else 'ss_population_totals') ~ ") codes it.",
            'reason': "case when " ~ col ~ " is null then " ~ lit(d ~ " (cell dimension) is missing")
                ~ " when _known_" ~ loop.index ~ " is null then "
                ~ dbt.concat([lit(d ~ " = '"), shown(col), lit("' is not a value of the population")]) ~ " end"}) -%}
    {%- endfor -%}
    {%- if var('ss_design_weight', none) is not none -%}
        {%- set w = var('ss_design_weight') -%}
        {%- do checks.append({'column': '_problem_weight', 'problem': 'bad_weight',
            'fix': "Fix column '" ~ w ~ "' (var 'ss_design_weight'), or set ss_design_weight: null to derive the weights from the population.",
            'reason': "case when _raw_design_weight is null then " ~ lit("design weight (" ~ w ~ ") is missing")
                ~ " when design_weight is null then " ~ dbt.concat(["'design weight '''", shown("_raw_design_weight"), "''' is not a number'"])
                ~ " when not " ~ surveysynth.is_finite("design_weight") ~ " then " ~ dbt.concat(["'design weight '", shown("_raw_design_weight"), "' is not a finite number'"])
                ~ " when abs(design_weight) > " ~ surveysynth.max_abs_value() ~ " then " ~ dbt.concat(["'design weight '", shown("_raw_design_weight"), "' is beyond ss_max_abs_value = " ~ surveysynth.max_abs_value() ~ "'"])
                ~ " when design_weight <= 0 then " ~ dbt.concat(["'design weight '", shown("_raw_design_weight"), "' is not positive'"]) ~ " end"}) -%}
    {%- endif -%}
    {%- if surveysynth.has_frame() -%}
        {%- do checks.append({'column': '_problem_frame', 'problem': 'unit_not_on_frame',
            'fix': "The unit ids of ss_responses (column '" ~ var('ss_unit_id') ~ "') and ss_frame (column '"
                ~ var('ss_frame_unit_id') ~ "') must hold the same values, of the same type and format.",
            'reason': "case when unit_id is not null and _frame_unit_id is null then "
                ~ dbt.concat(["'unit '", shown("unit_id"), "' is not on the frame (ss_frame)'"]) ~ " end"}) -%}
    {%- endif -%}
    {%- for name, spec in surveysynth.outcome_specs().items() -%}
        {%- do checks.extend(surveysynth.outcome_checks(name, spec, loop.index)) -%}
    {%- endfor -%}
    {{ return(checks) }}
{% endmacro %}

{#- The checks of one outcome: for numbers, one for values that are not finite or beyond
    ss_max_abs_value (problem not_finite) and one for the type and range (out_of_range); for
    levels, unknown_level. -#}
{% macro outcome_checks(name, spec, index) %}
    {%- set lit = surveysynth.sql_literal -%}
    {%- set shown = surveysynth.shown_value -%}
    {%- set col = surveysynth.ident(name) -%}
    {%- set raw = surveysynth.ident('_raw_' ~ name) -%}
    {%- set is_value = lit(name ~ " = ") -%}
    {%- if spec.type not in ('continuous', 'count') -%}
        {%- set levels = spec.levels if spec.type != 'binary' else ['0', '1'] -%}
        {%- set fix = "Recode column '" ~ name ~ "' to 0/1 (true/false and yes/no are read too), or declare it categorical with its levels in ss_outcomes."
            if spec.type == 'binary' else "List the codes the data use in ss_outcomes." ~ name ~ ".levels, or recode column '" ~ name ~ "'." -%}
        {{ return([{'column': '_problem_outcome_' ~ index, 'problem': 'unknown_level', 'fix': fix,
            'reason': "case when " ~ raw ~ " is not null and " ~ col ~ " is null then "
                ~ dbt.concat([lit(name ~ " = '"), shown(raw), lit("' is not one of its levels (" ~ levels | join(', ') ~ ")")]) ~ " end"}]) }}
    {%- endif -%}
    {%- set bound = surveysynth.max_abs_value() -%}
    {%- set magnitude = {'column': '_problem_outcome_' ~ index ~ '_finite', 'problem': 'not_finite',
        'reason': "case when not " ~ surveysynth.is_finite(col) ~ " then "
            ~ dbt.concat([is_value, shown(raw), lit(" is not a finite number")])
            ~ " when abs(" ~ col ~ ") > " ~ bound ~ " then "
            ~ dbt.concat([is_value, shown(raw), lit(" is beyond ss_max_abs_value = " ~ bound)]) ~ " end"} -%}
    {%- set sane = surveysynth.is_finite(col) ~ " and abs(" ~ col ~ ") <= " ~ bound -%}
    {%- set conds = ["when " ~ raw ~ " is not null and " ~ col ~ " is null then " ~ dbt.concat([lit(name ~ " = '"), shown(raw), lit("' is not a number")])] -%}
    {%- if spec.type == 'count' -%}
        {%- do conds.append("when " ~ sane ~ " and " ~ col ~ " <> floor(" ~ col ~ ") then " ~ dbt.concat([is_value, shown(raw), lit(" is not a whole number (count)")])) -%}
    {%- endif -%}
    {%- if spec.get('min') is not none -%}
        {%- do conds.append("when " ~ sane ~ " and " ~ col ~ " < " ~ spec.min ~ " then " ~ dbt.concat([is_value, shown(raw), lit(" is below its minimum " ~ spec.min)])) -%}
    {%- endif -%}
    {%- if spec.get('max') is not none -%}
        {%- do conds.append("when " ~ sane ~ " and " ~ col ~ " > " ~ spec.max ~ " then " ~ dbt.concat([is_value, shown(raw), lit(" is above its maximum " ~ spec.max)])) -%}
    {%- endif -%}
    {{ return([magnitude, {'column': '_problem_outcome_' ~ index, 'problem': 'out_of_range',
        'reason': "case " ~ conds | join(' ') ~ " end"}]) }}
{% endmacro %}

{#- The largest magnitude a number in the responses may have (var ss_max_abs_value), as SQL. -#}
{% macro max_abs_value() %}
    {{ return('%.15g' | format(var('ss_max_abs_value', 1.0e15))) }}
{% endmacro %}

{#- A value as text for a reason, cut to 60 characters so a huge value cannot flood the table. -#}
{% macro shown_value(expr) %}
    {%- set t = surveysynth.as_text(expr) -%}
    {{ return("case when length(" ~ t ~ ") > 60 then " ~ dbt.concat(["substr(" ~ t ~ ", 1, 57)", "'...'"]) ~ " else " ~ t ~ " end") }}
{% endmacro %}
