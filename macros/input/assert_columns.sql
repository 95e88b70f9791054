{#- Stop the run when a configured column is missing from an input relation, naming the var
    that configured it and the columns that are there, so the fix is obvious. Names compare
    case-insensitively, as the engines resolve them. -#}
{% macro assert_columns(relation_var, relation_sql, required) %}
    {%- if surveysynth.runs_queries() -%}
        {%- set result = run_query("select * from " ~ relation_sql ~ " where 1 = 0") -%}
        {%- set have = result.column_names | map('lower') | list -%}
        {%- set missing = [] -%}
        {%- for col, col_var in required -%}
            {%- if col is not none and (col | lower) not in have -%}
                {%- do missing.append("column '" ~ col ~ "' (set by var '" ~ col_var ~ "')") -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set hint = '' -%}
        {%- if have | length == 1 and (have[0] | select('in', ',;|\t') | list | length) > 0 -%}
            {%- set hint = " The file was read as a single column: check its delimiter, and that every line has as many fields as the header." -%}
        {%- endif -%}
        {%- if missing -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: " ~ missing | join(', ') ~ " not found in " ~ relation_var ~ " = '"
                ~ var(relation_var) ~ "'. It has columns: " ~ have | join(', ')
                ~ ". Fix the var to name an existing column, or add the column to the input." ~ hint) }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
