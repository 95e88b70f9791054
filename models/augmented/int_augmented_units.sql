{{ surveysynth.validate_config() }}
{#- The stacked implicates before calibration: one complete dataset per implicate, one row per record.

    Policy (augment mode). A cell x wave whose support class is in ss_synth_augment_classes is
    `completed`: its real respondents represent themselves (start weight 1) and its synthetic records
    stand for the N - n units that did not respond (start weight synth_weight, = 1 unless
    ss_synth_max_records_per_cell capped the records), so in every implicate the cell is a completed
    population of N units. Every other cell x wave is `observed`: its real respondents carry their
    base weights (design_weights) and are calibrated to what the completed cells leave of the margins
    (augmented_microdata). Real records are repeated in every implicate, so `where implicate = l` is a
    complete analysable dataset.

    With ss_synth_augment_units = all the synthesizer makes records for all N units of a completed
    cell, and the cell's real respondents are left out of it (the records alone represent the cell;
    the respondents' answers still shaped the model).

    DP mode (ss_privacy_mode: dp): the public plan gave every frame cell records for all its units,
    whoever answered. Here, as in nonrespondents mode, a completed cell's respondents represent
    themselves, and its records of units that did not answer in the wave stand for the N - n
    non-respondents (start weight (N - n) / the records left, per implicate); the records of units
    that answered, and every record of an observed cell, stay out of the estimates (they are in the
    released records).

    Replica mode: the implicates are the fully synthetic copies (synth_weight = design weight), and
    every cell is `observed` (a synthetic sample of the population, not a completed one).

    variance_stratum and fpc feed the within-implicate variance of the estimate macro: the design
    stratum x wave with fpc = 1 - n_h / N_h for observed records; the cell x wave with fpc = 0 for a
    completed cell (a census of an imputed population has no sampling variance of its own). -#}
{{ surveysynth.validate_design_config() }}
{%- set dims = surveysynth.cell_dims() -%}
{%- set strata = surveysynth.design_strata() -%}
{%- set outs = surveysynth.outcomes() -%}
{%- set aux = surveysynth.frame_auxiliaries() if surveysynth.has_frame() else [] -%}
{%- set m = var('ss_synth_m', 20) | int -%}
{%- set replica = var('ss_synth_mode', 'augment') == 'replica' -%}
{%- set classes = var('ss_synth_augment_classes', ['sparse', 'empty']) -%}
{%- set records_for_all = var('ss_synth_augment_units', 'nonrespondents') == 'all' -%}
{%- set dp = var('ss_privacy_mode', 'off') == 'dp' and not replica -%}
{%- set t = surveysynth.as_text -%}

with responses as (

    select * from {{ ref('stg_responses') }}

),

weights as (

    select * from {{ ref('design_weights') }}

),

support as (

    select * from {{ ref('cell_support') }}

),

strata as (

    select * from {{ ref('design_strata') }}

),

synthetic as (

    select * from {{ ref('synthetic_microdata') }}

),

implicates as (

    {% for l in range(1, m + 1) -%}
    select {{ l }} as implicate
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{#- the role of every cell x wave: completed (augmented) or observed -#}
roles as (

    select
        cell_id,
        wave,
        support_class,
        n_population - n_respondents as n_nonrespondents,
        {% if replica -%}
        'observed' as cell_role
        {%- else -%}
        case
            when support_class in ({% for c in classes %}'{{ c }}'{{ ', ' if not loop.last }}{% endfor %}) then 'completed'
            else 'observed'
        end as cell_role
        {%- endif %}
    from support

),

run as (

    select max(synth_run_id) as synth_run_id from synthetic

),

{% if not replica -%}
real_records as (

    select
        implicates.implicate,
        false as is_synthetic,
        responses._row_id,
        responses.unit_id,
        responses.wave,
        {% for d in dims -%}
        responses.{{ d }},
        {% endfor -%}
        responses.cell_id,
        roles.support_class,
        roles.cell_role,
        {% for o in outs -%}
        responses.{{ o }},
        {% endfor -%}
        {% for a in aux -%}
        responses.{{ a }},
        {% endfor -%}
        case when roles.cell_role = 'completed' then 1.0 else weights.base_weight end as start_weight,
        weights.stratum_id,
        cast(null as {{ dbt.type_string() }}) as synth_method
    from responses
    inner join weights
        on responses._row_id = weights._row_id
    inner join roles
        on responses.cell_id = roles.cell_id
        and responses.wave = roles.wave
    cross join implicates
    {% if records_for_all -%}
    where roles.cell_role = 'observed'
    {%- endif %}

),
{%- endif %}

synthetic_records as (

    select
        synthetic.implicate,
        true as is_synthetic,
        cast(null as {{ dbt.type_bigint() }}) as _row_id,
        synthetic.unit_id,
        synthetic.wave,
        {% for d in dims -%}
        synthetic.{{ d }},
        {% endfor -%}
        synthetic.cell_id,
        roles.support_class,
        roles.cell_role,
        {% for o in outs -%}
        synthetic.{{ o }},
        {% endfor -%}
        {% for a in aux -%}
        synthetic.{{ a }},
        {% endfor -%}
        {% if dp -%}
        cast(roles.n_nonrespondents as {{ surveysynth.type_double() }}) / count(*) over (
            partition by synthetic.implicate, synthetic.cell_id, synthetic.wave
        ) as start_weight,
        {%- else -%}
        synthetic.synth_weight as start_weight,
        {%- endif %}
        {{ surveysynth.category_key_expr(strata, 'synthetic') }} as stratum_id,
        synthetic.synth_method
    from synthetic
    inner join roles
        on synthetic.cell_id = roles.cell_id
        and synthetic.wave = roles.wave
    {% if dp -%}
    left join responses as answered
        on synthetic.unit_id = answered.unit_id
        and synthetic.wave = answered.wave
    {% endif -%}
    {% if not replica -%}
    where roles.cell_role = 'completed'
    {%- if dp %} and answered.unit_id is null{% endif %}
    {%- endif %}

),

stacked as (

    {% if not replica -%}
    select * from real_records
    union all
    {% endif -%}
    select * from synthetic_records

),

final as (

    select
        -- implicate and provenance
        stacked.implicate,
        stacked.is_synthetic,
        stacked._row_id,
        stacked.unit_id,
        run.synth_run_id,
        stacked.synth_method,

        -- cell and wave
        stacked.wave,
        {% for d in dims -%}
        stacked.{{ d }},
        {% endfor -%}
        stacked.cell_id,
        stacked.support_class,
        stacked.cell_role,
        case when stacked.cell_role = 'completed' then stacked.cell_id else '(observed)' end as completion_group,

        -- outcomes and auxiliaries
        {% for o in outs -%}
        stacked.{{ o }},
        {% endfor -%}
        {% for a in aux -%}
        stacked.{{ a }},
        {% endfor -%}

        -- weights and variance design
        cast(stacked.start_weight as {{ surveysynth.type_double() }}) as start_weight,
        case
            when stacked.cell_role = 'completed' then {{ dbt.concat([t('stacked.wave'), "'#completed#'", 'stacked.cell_id']) }}
            else {{ dbt.concat([t('stacked.wave'), "'#'", 'stacked.stratum_id']) }}
        end as variance_stratum,
        case when stacked.cell_role = 'completed' then 0.0 else coalesce(strata.fpc, 1.0) end as fpc
    from stacked
    cross join run
    left join strata
        on stacked.stratum_id = strata.stratum_id
        and stacked.wave = strata.wave

)

select * from final
