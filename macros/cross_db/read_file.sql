{#- Read a Parquet (or, on DuckDB, CSV) file as a relation. -#}
{% macro read_file(path, var_name='') %}
    {{ return(adapter.dispatch('read_file', 'surveysynth')(path, var_name)) }}
{% endmacro %}

{% macro default__read_file(path, var_name) %}
    {{ exceptions.raise_compiler_error(
        "surveysynth: var '" ~ var_name ~ "' names a file (" ~ path ~ "), which the "
        ~ target.type ~ " target cannot read directly. Load it into a table and give '<schema>.<table>'.") }}
{% endmacro %}

{% macro duckdb__read_file(path, var_name) %}
    {%- if path.endswith('.csv') or path.endswith('.csv.gz') -%}
        read_csv_auto('{{ path }}', header = true)
    {%- else -%}
        read_parquet('{{ path }}')
    {%- endif -%}
{% endmacro %}

{% macro spark__read_file(path, var_name) %}
    {%- if path.endswith('.csv') -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: var '" ~ var_name ~ "': Spark reads Parquet files here; convert " ~ path ~ " to Parquet.") }}
    {%- endif -%}
    parquet.`{{ path }}`
{% endmacro %}
