{#- The row-level validity checks of the responses, one entry per kind of problem.
    Each gives the name of a column of int_responses_checked that holds a readable reason
    (null when the row passes) and the SQL that computes it over the `numbered` CTE.
    quarantined_responses unpivots exactly these columns, so the two never drift apart. -#}
{% macro response_checks() %}
    {%- set checks = [] -%}
    {%- set t = surveysynth.as_text -%}
    {%- do checks.append({'column': '_problem_unit_id', 'problem': 'missing_unit_id',
        'reason': "case when unit_id is null then 'unit id (" ~ var('ss_unit_id') ~ ") is missing' end"}) -%}
    {%- do checks.append({'column': '_problem_wave', 'problem': 'missing_wave',
        'reason': "case when wave is null then 'wave (" ~ var('ss_wave') ~ ") is missing' end"}) -%}
    {%- do checks.append({'column': '_problem_duplicate', 'problem': 'duplicate_unit_wave',
        'reason': "case when unit_id is not null and wave is not null and _n_same_key > 1 then "
            ~ dbt.concat(["'unit '", "unit_id", "' appears '", t("_n_same_key"), "' times in wave '", t("wave")]) ~ " end"}) -%}
    {%- for d in surveysynth.cell_dims() -%}
        {%- do checks.append({'column': '_problem_cell_' ~ loop.index, 'problem': 'bad_cell_value',
            'reason': "case when " ~ d ~ " is null then '" ~ d ~ " (cell dimension) is missing'"
                ~ " when _known_" ~ loop.index ~ " is null then "
                ~ dbt.concat(["'" ~ d ~ " = '''", d, "''' is not a value of the population'"]) ~ " end"}) -%}
    {%- endfor -%}
    {%- if var('ss_design_weight', none) is not none -%}
        {%- do checks.append({'column': '_problem_weight', 'problem': 'bad_weight',
            'reason': "case when _raw_design_weight is null then 'design weight (" ~ var('ss_design_weight') ~ ") is missing'"
                ~ " when design_weight is null then " ~ dbt.concat(["'design weight '''", t("_raw_design_weight"), "''' is not a number'"])
                ~ " when design_weight <= 0 then " ~ dbt.concat(["'design weight '", t("_raw_design_weight"), "' is not positive'"]) ~ " end"}) -%}
    {%- endif -%}
    {%- if surveysynth.has_frame() -%}
        {%- do checks.append({'column': '_problem_frame', 'problem': 'unit_not_on_frame',
            'reason': "case when unit_id is not null and _frame_unit_id is null then "
                ~ dbt.concat(["'unit '", "unit_id", "' is not on the frame (ss_frame)'"]) ~ " end"}) -%}
    {%- endif -%}
    {%- for name, spec in surveysynth.outcomes().items() -%}
        {%- set raw = '_raw_' ~ name -%}
        {%- if spec.type in ('continuous', 'count') -%}
            {%- set conds = ["when " ~ raw ~ " is not null and " ~ name ~ " is null then " ~ dbt.concat(["'" ~ name ~ " = '''", t(raw), "''' is not a number'"])] -%}
            {%- if spec.type == 'count' -%}
                {%- do conds.append("when " ~ name ~ " <> floor(" ~ name ~ ") then " ~ dbt.concat(["'" ~ name ~ " = '", t(raw), "' is not a whole number (count)'"])) -%}
            {%- endif -%}
            {%- if spec.get('min') is not none -%}
                {%- do conds.append("when " ~ name ~ " < " ~ spec.min ~ " then " ~ dbt.concat(["'" ~ name ~ " = '", t(raw), "' is below its minimum " ~ spec.min ~ "'"])) -%}
            {%- endif -%}
            {%- if spec.get('max') is not none -%}
                {%- do conds.append("when " ~ name ~ " > " ~ spec.max ~ " then " ~ dbt.concat(["'" ~ name ~ " = '", t(raw), "' is above its maximum " ~ spec.max ~ "'"])) -%}
            {%- endif -%}
            {%- do checks.append({'column': '_problem_' ~ name, 'problem': 'out_of_range',
                'reason': "case " ~ conds | join(' ') ~ " end"}) -%}
        {%- else -%}
            {%- set levels = spec.levels if spec.type != 'binary' else ['0', '1'] -%}
            {%- do checks.append({'column': '_problem_' ~ name, 'problem': 'unknown_level',
                'reason': "case when " ~ raw ~ " is not null and " ~ name ~ " is null then "
                    ~ dbt.concat(["'" ~ name ~ " = '''", t(raw), "''' is not one of its levels (" ~ levels | join(', ') ~ ")'"]) ~ " end"}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(checks) }}
{% endmacro %}
