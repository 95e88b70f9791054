{#- Resolve a relation var of the input contract into something a FROM clause can read.
    Forms: "ref:<name>", "source:<source>.<table>", "file:<path>", or a plain relation name. -#}
{% macro input_relation(var_name) %}
    {%- set spec = var(var_name, none) -%}
    {%- if spec is none or (spec is string and spec | trim == '') -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: var '" ~ var_name ~ "' is not set. Give it a relation: "
            ~ "'ref:<model>', 'source:<source>.<table>', 'file:<path.parquet>' or '<schema>.<table>'.") }}
    {%- endif -%}
    {%- if spec is not string -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: var '" ~ var_name ~ "' must be a string naming a relation, got: " ~ spec) }}
    {%- endif -%}
    {%- set spec = spec | trim -%}
    {%- if spec.startswith('ref:') -%}
        {{ ref(spec[4:] | trim) }}
    {%- elif spec.startswith('source:') -%}
        {%- set parts = (spec[7:] | trim).split('.') -%}
        {%- if parts | length != 2 -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: var '" ~ var_name ~ "' = '" ~ spec ~ "': write sources as 'source:<source>.<table>'.") }}
        {%- endif -%}
        {{ source(parts[0], parts[1]) }}
    {%- elif spec.startswith('file:') -%}
        {{ surveysynth.read_file(spec[5:] | trim, var_name) }}
    {%- else -%}
        {%- do surveysynth.assert_relation_exists(spec, var_name) -%}
        {{ spec }}
    {%- endif -%}
{% endmacro %}

{#- A '<schema>.<table>' var must name a relation the target can read (checked when the model runs,
    so a typo gives this message instead of the engine's catalog error). -#}
{% macro assert_relation_exists(spec, var_name) %}
    {%- if not surveysynth.runs_queries() -%}{{ return('') }}{%- endif -%}
    {%- set parts = spec.split('.') -%}
    {%- if parts | length > 3 or parts | select('equalto', '') | list | length > 0 -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: var '" ~ var_name ~ "' = '" ~ spec ~ "' is not a relation name: give '<schema>.<table>', "
            ~ "'file:<path>', 'ref:<model>' or 'source:<source>.<table>'.") }}
    {%- endif -%}
    {%- set names = ([target.database, target.schema] + parts)[-3:] -%}
    {%- set rel = adapter.get_relation(database=names[0], schema=names[1], identifier=names[2]) -%}
    {%- if rel is none -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: var '" ~ var_name ~ "' = '" ~ spec ~ "': no such table or view in the target ("
            ~ target.type ~ ", database '" ~ names[0] ~ "'). Fix the name, or give 'file:<path>' for a file.") }}
    {%- endif -%}
{% endmacro %}

{#- Materialization of a model that reads an input var directly: a table when the var names a file
    (the data are copied in, so the warehouse never holds a view over a path that another working
    directory or client could not resolve), else a view over the warehouse relation. -#}
{% macro input_materialization(var_name) %}
    {%- set spec = var(var_name, none) -%}
    {{ return('table' if spec is string and (spec | trim).startswith('file:') else 'view') }}
{% endmacro %}
