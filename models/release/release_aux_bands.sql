{{ surveysynth.validate_config() }}
{#- The bands in which the release shows the register auxiliaries (var ss_release_auxiliaries:
    banded): one row per auxiliary x band. The edges are the frame's quantiles at 1/k, ..., (k-1)/k
    (k = var ss_release_aux_bands, default 5) over every frame unit, rounded to two significant
    figures, duplicates merged; the lowest band is open below, the highest open above, so each
    band holds about 1/k of the register and an extreme unit hides among the top or bottom fifth.
    A released record carries the label of its unit's band, never the value. Bands with no frame
    unit are left out. Built after the gates, like the release it serves. -#}
-- depends_on: {{ ref('release_gates') }}
{%- set k = surveysynth.release_aux_band_count() -%}
{%- set aux = surveysynth.release_columns(ref('stg_frame'), surveysynth.release_aux_names()) -%}
{%- set dbl = surveysynth.type_double() -%}

{%- if aux | length > 0 %}
with frame_values as (

    {% for a in aux -%}
    select '{{ a.name | replace("'", "''") }}' as auxiliary, cast({{ a.sql }} as {{ dbl }}) as value
    from {{ ref('stg_frame') }}
    where {{ a.sql }} is not null
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

quantiles as (

    select
        auxiliary,
        {% for i in range(1, k) -%}
        percentile_cont({{ i / k }}) within group (order by value) as q_{{ i }}{{ ',' if not loop.last }}
        {% endfor %}
    from frame_values
    group by auxiliary

),

edges as (

    {% for i in range(1, k) -%}
    select distinct auxiliary, {{ surveysynth.round_significant('q_' ~ i) }} as edge from quantiles
    {{ 'union' if not loop.last }}
    {% endfor %}

),

ordered as (

    select
        auxiliary,
        edge,
        row_number() over (partition by auxiliary order by edge) as edge_order,
        lead(edge) over (partition by auxiliary order by edge) as next_edge
    from edges

),

bands as (

    select auxiliary, 0 as band_order, cast(null as {{ dbl }}) as lower_bound, edge as upper_bound
    from ordered
    where edge_order = 1

    union all

    select auxiliary, edge_order as band_order, edge as lower_bound, next_edge as upper_bound
    from ordered

),

counted as (

    select
        b.auxiliary,
        b.band_order,
        b.lower_bound,
        b.upper_bound,
        count(v.value) as n_frame_units
    from bands as b
    left join frame_values as v
        on v.auxiliary = b.auxiliary
        and (b.lower_bound is null or v.value >= b.lower_bound)
        and (b.upper_bound is null or v.value < b.upper_bound)
    group by b.auxiliary, b.band_order, b.lower_bound, b.upper_bound

),

final as (

    select
        auxiliary,
        band_order,
        lower_bound,
        upper_bound,
        case
            when lower_bound is null
                then {{ dbt.concat(["'under '", surveysynth.band_edge_text('upper_bound')]) }}
            when upper_bound is null
                then {{ dbt.concat([surveysynth.band_edge_text('lower_bound'), "' and over'"]) }}
            else {{ dbt.concat([surveysynth.band_edge_text('lower_bound'), "' to under '", surveysynth.band_edge_text('upper_bound')]) }}
        end as band_label,
        n_frame_units
    from counted
    where n_frame_units > 0

)

select * from final

{%- else %}

select
    cast(null as {{ dbt.type_string() }}) as auxiliary,
    0 as band_order,
    cast(null as {{ dbl }}) as lower_bound,
    cast(null as {{ dbl }}) as upper_bound,
    cast(null as {{ dbt.type_string() }}) as band_label,
    0 as n_frame_units
from {{ ref('stg_frame') }}
where 1 = 0

{%- endif %}
