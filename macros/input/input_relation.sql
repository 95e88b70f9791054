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
        {{ spec }}
    {%- endif -%}
{% endmacro %}
