{#- Read a Parquet (or, on DuckDB, CSV) file as a relation. On DuckDB the file is checked first
    (assert_file_readable), so a missing, empty, non-Parquet or wrongly encoded file stops the run
    with a message naming the var instead of the engine's IO error. -#}
{% macro read_file(path, var_name='') %}
    {{ return(adapter.dispatch('read_file', 'surveysynth')(path, var_name)) }}
{% endmacro %}

{% macro default__read_file(path, var_name) %}
    {{ exceptions.raise_compiler_error(
        "surveysynth: var '" ~ var_name ~ "' names a file (" ~ path ~ "), which the "
        ~ target.type ~ " target cannot read directly. Load it into a table and give '<schema>.<table>'.") }}
{% endmacro %}

{% macro duckdb__read_file(path, var_name) %}
    {%- set is_csv = path.endswith('.csv') or path.endswith('.csv.gz') or path.endswith('.tsv') -%}
    {%- do surveysynth.assert_file_readable(path, var_name, is_csv) -%}
    {%- if is_csv -%}
        read_csv_auto({{ surveysynth.sql_literal(path) }}, header = true, encoding = {{ surveysynth.sql_literal(var('ss_csv_encoding', 'utf-8')) }})
    {%- else -%}
        read_parquet({{ surveysynth.sql_literal(path) }})
    {%- endif -%}
{% endmacro %}

{% macro spark__read_file(path, var_name) %}
    {%- if path.endswith('.csv') -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: var '" ~ var_name ~ "': Spark reads Parquet files here; convert " ~ path ~ " to Parquet.") }}
    {%- endif -%}
    parquet.{{ surveysynth.quote_ident(path) }}
{% endmacro %}

{#- DuckDB: the file exists, is not empty, is a Parquet file (magic bytes at both ends) or, for CSV
    read as UTF-8, valid UTF-8; the content is checked only up to 64 MB in all (larger files
    are left to the reader). -#}
{% macro assert_file_readable(path, var_name, is_csv) %}
    {%- if not surveysynth.runs_queries() -%}{{ return('') }}{%- endif -%}
    {%- set lit = surveysynth.sql_literal(path) -%}
    {%- set where = "var '" ~ var_name ~ "' = 'file:" ~ path ~ "'" -%}
    {%- if run_query("select count(*) from glob(" ~ lit ~ ")").rows[0][0] == 0 -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: " ~ where ~ ": no such file (a relative path is read from the project directory, "
            ~ "where dbt runs). Fix the path in the var or create the file.") }}
    {%- endif -%}
    {%- set size = run_query("select min(size), sum(size) from read_blob(" ~ lit ~ ")").rows[0] -%}
    {%- if size[0] == 0 -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: " ~ where ~ ": the file is empty (0 bytes). Write the data to it, with a header row for CSV.") }}
    {%- endif -%}
    {%- if size[1] > 64 * 1024 * 1024 -%}{{ return('') }}{%- endif -%}
    {%- set utf8 = (var('ss_csv_encoding', 'utf-8') | lower) in ('utf-8', 'utf8') -%}
    {%- if is_csv and utf8 -%}
        {%- if not run_query("select bool_and(try(decode(content)) is not null) from read_blob(" ~ lit ~ ")").rows[0][0] -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: " ~ where ~ ": the file is not UTF-8 text. Save it as UTF-8, or set var "
                ~ "'ss_csv_encoding' to its encoding (latin-1 or utf-16).") }}
        {%- endif -%}
    {%- elif not is_csv -%}
        {%- set q = "select bool_and(size >= 12 and content[1:4] = 'PAR1'::blob and content[-4:] = 'PAR1'::blob) from read_blob(" ~ lit ~ ")" -%}
        {%- if not run_query(q).rows[0][0] -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: " ~ where ~ ": the file is not a Parquet file. Write it as Parquet, or give a "
                ~ ".csv path for a CSV file.") }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
