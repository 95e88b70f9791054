{{ surveysynth.validate_config() }}
{#- Every target of int_augmented_margins against what the calibrated weights of augmented_microdata
    reach, one row per implicate x margin x category x wave, summed from the records (independent of
    the raking factors). The completion margin's rows are the augmented cells: their weights must sum
    to the cell's population count. status: ok, missed (relative error above ss_rake_tol),
    no_records (a nonzero target that no record can reach), no_target (records in a category without
    a target). The data test margins_within_tolerance fails the build on any row that is not ok. -#}
{%- set specs = surveysynth.augmented_margin_specs() -%}
{%- set aux = [] -%}
{%- for tt in specs.totals %}{% if tt.variable not in aux %}{% do aux.append(tt.variable) %}{% endif %}{% endfor -%}
{%- set dims = [] -%}
{%- for mm in specs.counts + specs.totals -%}{%- for d in mm.dims -%}{%- if d not in dims %}{% do dims.append(d) %}{% endif -%}{%- endfor -%}{%- endfor -%}
{%- set tol = surveysynth.rake_settings().tol -%}
{%- set t = surveysynth.as_text -%}

with records as (

    select * from {{ ref('augmented_microdata') }}

),

margins as (

    select * from {{ ref('int_augmented_margins') }}

),

implicates as (

    select distinct implicate from records

),

cell_sums as (

    select
        records.implicate,
        records.wave,
        records.cell_id,
        {% for d in dims if d != 'completion_group' -%}
        min(records.{{ d }}) as {{ d }},
        {% endfor -%}
        min(case when records.cell_role = 'completed' then records.cell_id else '(observed)' end) as completion_group,
        {% for a in aux -%}
        {% call surveysynth.dagg() %}records.analysis_weight * coalesce(records.{{ a }}, 0){% endcall %} as calibrated_x_{{ loop.index }},
        {% endfor -%}
        count(*) as n_records,
        {% call surveysynth.dagg() %}records.analysis_weight{% endcall %} as calibrated_total
    from records
    group by records.implicate, records.wave, records.cell_id

),

achieved as (

    {{ surveysynth.margin_achieved(specs, aux, ['implicate', 'wave'], 'n_records',
        [('calibrated_total', 'calibrated_x_')]) }}

),

targets as (

    select implicates.implicate, margins.*
    from margins
    cross join implicates

),

joined as (

    select
        coalesce(targets.implicate, achieved.implicate) as implicate,
        coalesce(targets.margin_id, achieved.margin_id) as margin_id,
        targets.margin_kind,
        targets.variable,
        coalesce(targets.category, achieved.category) as category,
        coalesce(targets.wave, achieved.wave) as wave,
        targets.target,
        coalesce(achieved.n_records, 0) as n_records,
        coalesce(achieved.calibrated_total, 0.0) as calibrated_total
    from targets
    full outer join achieved
        on targets.implicate = achieved.implicate
        and targets.margin_id = achieved.margin_id
        and targets.wave = achieved.wave
        and targets.category = achieved.category

),

checked as (

    select
        joined.*,
{{ surveysynth.margin_status('n_records', 'no_records', tol) }}
    from joined

),

final as (

    select
        checked.*,
        {{ tol }} as tolerance,
        case status
            when 'ok' then 'within tolerance'
            else {{ dbt.concat(["'implicate '", t('implicate'), "', margin '''", "margin_id", "''' category '''", "category",
                "''' (wave '", t('wave'), "'): '", "status", "', target '", t('target'), "', calibrated total '",
                t('calibrated_total'), "'. The synthetic records do not complete the cell or the raking of the implicate did not converge (augmented_calibration_convergence)'"]) }}
        end as message
    from checked

)

select * from final
