{{ config(schema='surveysynth_release_staging') }}
{{ surveysynth.validate_config() }}
{#- The released magnitude tables (var ss_sdc_tables), staged (published by release_publish): one row
    per table x wave x cell, margins included (label 'Total'), the weighted total where published
    and null where suppressed. Whether a cell was suppressed by a primary rule or to protect another
    is not released (it would point at the sensitive cells). release_id: the release
    (release_candidate) on every row. -#}
-- depends_on: {{ ref('release_gates') }}
with pattern as (

    select * from {{ ref('table_suppression') }}

),

release as (

    select release_id from {{ ref('release_candidate') }}

),

final as (

    select
        r.release_id,
        p.table_name,
        p.value_column,
        p.wave,
        p.row_dim,
        p.row_label,
        p.col_dim,
        p.col_label,
        case when p.suppressed then null else p.value end as value,
        case when p.suppressed then 'suppressed' else 'published' end as status
    from pattern as p
    cross join release as r

)

select * from final
