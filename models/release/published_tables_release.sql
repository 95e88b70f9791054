{{ surveysynth.validate_config() }}
{#- The released magnitude tables (var ss_sdc_tables): one row per table x wave x cell, margins
    included (label 'Total'), the weighted total where published and null where suppressed. Whether
    a cell was suppressed by a primary rule or to protect another is not released (it would point at
    the sensitive cells). Rewritten only by a build in which every gate passed (release_gates). -#}
-- depends_on: {{ ref('release_gates') }}
with pattern as (

    select * from {{ ref('table_suppression') }}

),

final as (

    select
        table_name,
        value_column,
        wave,
        row_dim,
        row_label,
        col_dim,
        col_label,
        case when suppressed then null else value end as value,
        case when suppressed then 'suppressed' else 'published' end as status
    from pattern

)

select * from final
