{#- Where the release lives. The release schema (var ss_release_schema; null = '<target schema>_release')
    holds the released tables and nothing else; they are built first in the staging schema
    ('<release schema>_staging') and then published into the release schema in one transaction by
    the release_publish model (macros/release/release_publish.sql). -#}
{% macro release_schema() %}
    {%- set schema = var('ss_release_schema', none) or (target.schema ~ '_release') -%}
    {%- if (schema | lower) == (target.schema | lower) -%}
        {{ exceptions.raise_compiler_error("var ss_release_schema must name a schema of its own, not the "
            ~ "target schema '" ~ target.schema ~ "' where the real microdata are built (null = '"
            ~ target.schema ~ "_release')") }}
    {%- endif -%}
    {{- return(schema) -}}
{% endmacro %}

{% macro release_staging_schema() %}
    {{- return(surveysynth.release_schema() ~ '_staging') -}}
{% endmacro %}

{#- Models opt into the release schemas with these names as their `schema` config: they are
    markers, mapped here to the schemas above; every other model gets dbt's default name
    (the target schema, or '<target schema>_<custom schema>'), and an empty or null custom schema
    (var ss_internal_schema: null) the target schema. A project that installs surveysynth gets the
    same names for the package's models (integration_tests/), unless it defines a generate_schema_name
    of its own: dbt looks there first, so that one must return this macro's result (README). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name == 'surveysynth_release' -%}
        {{ surveysynth.release_schema() }}
    {%- elif custom_schema_name == 'surveysynth_release_staging' -%}
        {{ surveysynth.release_staging_schema() }}
    {%- elif custom_schema_name is none or (custom_schema_name | string | trim) in ('', 'None') -%}
        {{ target.schema }}
    {%- else -%}
        {{ default__generate_schema_name(custom_schema_name | trim, node) }}
    {%- endif -%}
{%- endmacro %}
