{{ config(
    materialized='release_publish',
    schema='surveysynth_release',
    release_tables=['domain_estimates_release', 'published_tables_release',
                    'synthetic_microdata_release', 'release_manifest']
) }}
{{ surveysynth.validate_config() }}
{#- Publishes the staged release into the release schema (var ss_release_schema) in one transaction
    (materialization release_publish, macros/release/release_publish.sql). This query is its guard:
    the release ids in the staged tables, with their rows; the publish goes ahead only when there is
    exactly one, carried by the manifest's single row. The model creates no relation of its own:
    the release schema holds the four release tables and nothing else. -#}
{%- set staged = ['release_manifest', 'domain_estimates_release', 'published_tables_release',
                  'synthetic_microdata_release'] -%}
{% for name in staged -%}
select '{{ name }}' as staged_table, release_id, count(*) as n_rows
from {{ ref(name) }}
group by release_id
{{ 'union all' if not loop.last }}
{% endfor %}
