{#- Checks of the inputs as a whole, run at staging so that an empty, degenerate or miscoded input
    stops the run with one message naming the var or column and the fix, before any model that
    would fail on it (or publish from it) runs. Row-level problems are quarantined instead
    (response_checks); these are the cases where quarantining rows would hide what is wrong. -#}

{#- The population (population_cells, from ss_frame or ss_population_totals): at least two cells,
    each listed once, with a known, non-negative count. -#}
{% macro assert_population_is_valid() %}
    {%- if not surveysynth.runs_queries() -%}{{ return('') }}{%- endif -%}
    {%- set source_var = 'ss_frame' if surveysynth.has_frame() else 'ss_population_totals' -%}
    {%- set about = "the population (var '" ~ source_var ~ "' = '" ~ var(source_var) ~ "')" -%}
    {%- set q -%}
        select
            count(*) as n_rows,
            count(distinct cell_id) as n_cells,
            sum(case when n_population is null or n_population < 0 then 1 else 0 end) as n_bad_counts
        from {{ ref('population_cells') }}
    {%- endset -%}
    {%- set row = run_query(q).rows[0] -%}
    {%- if row[0] == 0 -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: " ~ about ~ " has no rows, so there are no cells to estimate. Point the var at "
            ~ "the population " ~ ('frame (one row per unit)' if source_var == 'ss_frame' else 'totals (one row per cell)') ~ ".") }}
    {%- endif -%}
    {%- if row[0] != row[1] -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: " ~ about ~ " lists " ~ (row[0] - row[1]) ~ " cell(s) of ss_cell_dims ("
            ~ surveysynth.cell_dim_names() | join(', ') ~ ") more than once. List each cell once with its count.") }}
    {%- endif -%}
    {%- if row[2] > 0 -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: " ~ about ~ " has " ~ row[2] ~ " cell(s) whose count (column '" ~ var('ss_population_count')
            ~ "', var 'ss_population_count') is missing or negative. Give every cell its number of units.") }}
    {%- endif -%}
    {%- if row[1] < 2 -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: " ~ about ~ " has a single cell of ss_cell_dims (" ~ surveysynth.cell_dim_names() | join(', ')
            ~ "). Thin cells are filled by borrowing strength from other cells, so there must be at least two: "
            ~ "add a cell dimension with two or more values to ss_cell_dims.") }}
    {%- endif -%}
{% endmacro %}

{#- The truth table of the back-test (ss_backtest_truth), when one is given: readable from Python
    (a file or a table), with the cell dimensions, the wave, indicator and true_value, and its waves
    of the same type as the responses' (they are matched by value). -#}
{% macro assert_truth_is_usable(responses_sql) %}
    {%- set spec = var('ss_backtest_truth', none) -%}
    {%- if not surveysynth.runs_queries() or not var('ss_backtest_enabled', true) or spec is none or (spec | string | trim) == '' -%}
        {{ return('') }}
    {%- endif -%}
    {%- if spec is not string or spec.startswith('ref:') or spec.startswith('source:') -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: var 'ss_backtest_truth' = '" ~ spec ~ "': the back-test reads its truth from Python, "
            ~ "so give 'file:<path>' or '<schema>.<table>' (or null).") }}
    {%- endif -%}
    {%- set truth_sql = surveysynth.input_relation('ss_backtest_truth') -%}
    {%- set have = run_query("select * from " ~ truth_sql ~ " where 1 = 0").column_names | map('lower') | list -%}
    {%- set wave_col = var('ss_wave') if (var('ss_wave') | lower) in have else 'wave' -%}
    {%- set missing = [] -%}
    {%- for col in surveysynth.cell_dim_names() + [wave_col, 'indicator', 'true_value'] -%}
        {%- if (col | lower) not in have %}{% do missing.append(col) %}{% endif -%}
    {%- endfor -%}
    {%- if missing -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: var 'ss_backtest_truth' = '" ~ spec ~ "' lacks column(s) " ~ missing | join(', ')
            ~ ": it needs the cell dimensions, the wave (" ~ var('ss_wave') ~ " or wave), indicator and true_value. "
            ~ "It has: " ~ have | join(', ') ~ ". Add them, or set ss_backtest_truth: null.") }}
    {%- endif -%}
    {%- set q -%}
        select
            (select {{ surveysynth.type_of(surveysynth.ident(wave_col)) }} from {{ truth_sql }} limit 1),
            (select {{ surveysynth.type_of(surveysynth.ident(var('ss_wave'))) }} from {{ responses_sql }} limit 1)
    {%- endset -%}
    {%- set types = run_query(q).rows[0] -%}
    {%- if types[0] is not none and types[1] is not none
        and surveysynth.type_family(types[0]) != surveysynth.type_family(types[1]) -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: the waves of var 'ss_backtest_truth' (column '" ~ wave_col ~ "', " ~ types[0]
            ~ ") and of ss_responses (column '" ~ var('ss_wave') ~ "', " ~ types[1] ~ ") have different types, "
            ~ "so no truth row would match a wave. Store the truth's waves as the responses' are.") }}
    {%- endif -%}
{% endmacro %}

{#- After int_responses_checked is built (its post-hook): the responses have rows, every outcome has
    answers, and no check of a column's coding fails on more than ss_max_quarantine_share of the
    rows (a binary coded 1/2, cell values coded unlike the frame, ids that match no frame unit, a
    wave column that is not the wave...). Numeric range problems are left to the quarantine. -#}
{% macro assert_responses_usable(relation) %}
    {%- if not surveysynth.runs_queries() -%}{{ return('') }}{%- endif -%}
    {%- set outs = surveysynth.outcome_specs() -%}
    {%- set coding = [] -%}
    {%- for check in surveysynth.response_checks() -%}
        {%- if check.problem not in ('out_of_range', 'not_finite') %}{% do coding.append(check) %}{% endif -%}
    {%- endfor -%}
    {%- set q -%}
        select
            count(*) as n_rows
            {%- for name in outs %}, count({{ surveysynth.ident('_raw_' ~ name) }}){% endfor %}
            {%- for check in coding %}, count({{ check.column }}){% endfor %}
        from {{ relation }}
    {%- endset -%}
    {%- set row = run_query(q).rows[0] -%}
    {%- set n = row[0] -%}
    {%- set where = "var 'ss_responses' = '" ~ var('ss_responses') ~ "'" -%}
    {%- if n == 0 -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: " ~ where ~ " has no rows. Point it at the survey responses (one row per unit x wave).") }}
    {%- endif -%}
    {%- set errors = [] -%}
    {%- for name in outs -%}
        {%- if row[loop.index] == 0 -%}
            {%- do errors.append("outcome '" ~ name ~ "' (ss_outcomes) has no answers: it is empty in all "
                ~ n ~ " rows. Remove it from ss_outcomes, or name the column that holds its answers.") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set share = var('ss_max_quarantine_share') -%}
    {%- for check in coding -%}
        {%- set k = row[outs | length + loop.index] -%}
        {%- if k > 0 and k > share * n -%}
            {%- do errors.append(k ~ " of " ~ n ~ " rows fail the same check (" ~ check.problem ~ "), e.g. "
                ~ surveysynth.top_reasons(relation, check.column) ~ ". " ~ check.fix) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if errors -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: " ~ where ~ " cannot be staged (a check failing on more than ss_max_quarantine_share = "
            ~ share ~ " of the rows is a coding problem, not bad rows):\n  - " ~ errors | join("\n  - ")) }}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}

{#- The commonest reasons of one check column, with their row counts, as text. -#}
{% macro top_reasons(relation, column) %}
    {%- set q -%}
        select {{ column }}, count(*) as n from {{ relation }} where {{ column }} is not null
        group by {{ column }} order by n desc, {{ column }} limit 3
    {%- endset -%}
    {%- set parts = [] -%}
    {%- for r in run_query(q).rows -%}
        {%- do parts.append('"' ~ r[0] ~ '" (' ~ r[1] ~ ' rows)') -%}
    {%- endfor -%}
    {{ return(parts | join('; ')) }}
{% endmacro %}
