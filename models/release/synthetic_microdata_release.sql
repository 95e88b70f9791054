{{ config(schema='surveysynth_release_staging') }}
{{ surveysynth.validate_config() }}
{#- The released synthetic microdata, staged (published by release_publish): synthetic_microdata as it
    stood when every gate passed, with nothing real in it.
    - Ids: each record gets a synthetic id, 'syn-<implicate>-<n>', n numbering the implicate's
      records in the order of their released content (wave, cell, outcomes, bands), so the id says
      nothing about which frame unit a record stood for. The frame unit id is not released.
    - Columns: an allowlist (cell dimensions, wave, cell_id, the outcomes of ss_outcomes, the
      record's weight, implicate and provenance); any other column of synthetic_microdata stays out.
    - Register auxiliaries (var ss_release_auxiliaries): banded (default) releases '<aux>_band', the
      label of the unit's band in release_aux_bands (frame quantiles, coarse edges), never the value;
      drop leaves them out.
    - release_id: the release (release_candidate) on every row. -#}
-- depends_on: {{ ref('release_gates') }}
{%- set src = ref('synthetic_microdata') -%}
{%- set mode = surveysynth.release_auxiliaries_mode() -%}
{%- set keep = (var('ss_cell_dims') | list) + ['wave', 'cell_id'] + (var('ss_outcomes') | list)
    + ['synth_weight', 'is_synthetic', 'implicate', 'synth_run_id', 'synth_method', 'support_class'] -%}
{%- set cols = surveysynth.release_columns(src, keep) -%}
{%- set aux = surveysynth.release_columns(src, surveysynth.release_aux_names()) if mode == 'banded' else [] -%}
{%- set order_cols = [] -%}
{%- for c in cols if c.name | lower != 'implicate' %}{% do order_cols.append('s.' ~ c.sql) %}{% endfor -%}
{%- for a in aux %}{% do order_cols.append('b' ~ loop.index ~ '.band_label') %}{% endfor -%}
{%- set final_cols = ['r.release_id', dbt.concat(["'syn-'", surveysynth.as_text('b.implicate'), "'-'",
    surveysynth.as_text('b.record_number')]) ~ ' as synthetic_id'] -%}
{%- for c in cols %}{% do final_cols.append('b.' ~ c.sql) %}{% endfor -%}
{%- for a in aux %}{% do final_cols.append('b.' ~ adapter.quote(a.name ~ '_band')) %}{% endfor %}

with synthetic as (

    select * from {{ src }}

),

release as (

    select release_id from {{ ref('release_candidate') }}

),

bands as (

    select * from {{ ref('release_aux_bands') }}

),

banded as (

    select
        {% for c in cols -%}
        s.{{ c.sql }},
        {% endfor -%}
        {% for a in aux -%}
        b{{ loop.index }}.band_label as {{ adapter.quote(a.name ~ '_band') }},
        {% endfor -%}
        row_number() over (
            partition by s.implicate
            order by {{ order_cols | join(', ') if order_cols else 's.implicate' }}
        ) as record_number
    from synthetic as s
    {% for a in aux -%}
    left join bands as b{{ loop.index }}
        on b{{ loop.index }}.auxiliary = '{{ a.name | replace("'", "''") }}'
        and (b{{ loop.index }}.lower_bound is null or s.{{ a.sql }} >= b{{ loop.index }}.lower_bound)
        and (b{{ loop.index }}.upper_bound is null or s.{{ a.sql }} < b{{ loop.index }}.upper_bound)
    {% endfor %}

),

final as (

    select
        {{ final_cols | join(',\n        ') }}
    from banded as b
    cross join release as r

)

select * from final
