{{ surveysynth.validate_config() }}
{#- Every calibration target against what the calibrated weights reach, one row per margin x
    category x wave, summed from the unit weights (not from the cell factors, so the check is
    independent of the raking). status: ok, missed (relative error above ss_rake_tol),
    no_respondents (a nonzero target that no respondent's weight can reach), no_target (respondents
    in a category the margins do not list), collapsed (a nonzero target with no respondents, spread
    over the covered categories of its margin in proportion to their targets, as the rake macro does
    under ss_calibration_uncovered: collapse; `target` is then what the raking aimed at and
    `population_target` the original), relaxed (a margin other than the first in a wave whose raking
    did not converge and fell back to the first margin, ss_rake_fallback). The data test margins_within_tolerance fails the build on
    any row that is not ok, collapsed or relaxed, naming the margin and category. -#}
{%- set specs = surveysynth.calibration_specs() -%}
{%- set dims = surveysynth.cell_dims() -%}
{%- set aux = [] -%}
{%- for t in specs.totals %}{% if t.variable not in aux %}{% do aux.append(t.variable) %}{% endif %}{% endfor -%}
{%- set tol = surveysynth.rake_settings().tol -%}
{%- set t = surveysynth.as_text -%}
{%- set collapse = var('ss_calibration_uncovered', 'collapse') == 'collapse' -%}

with calibrated as (

    select * from {{ ref('calibrated_weights') }}

),

units as (

    select * from {{ ref('design_weights') }}

),

margins as (

    select * from {{ ref('calibration_margins') }}

),

{#- the fallback per wave straight from the factors, not from calibration_convergence: the margins
    are then checked (and named) even when the convergence gate fails -#}
convergence as (

    select wave, max(fallback) as fallback
    from {{ ref('int_calibration_factors') }}
    group by wave

),

weights as (

    select
        calibrated.wave,
        {% for d in dims -%}
        units.{{ d }},
        {% endfor -%}
        {% for a in aux -%}
        coalesce(units.{{ a }}, 0) as {{ a }},
        {% endfor -%}
        calibrated.base_weight,
        calibrated.calibrated_weight
    from calibrated
    inner join units
        on calibrated._row_id = units._row_id

),

cell_sums as (

    select
        wave,
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        {% for a in aux -%}
        {% call surveysynth.dagg() %}base_weight * {{ a }}{% endcall %} as base_x_{{ loop.index }},
        {% call surveysynth.dagg() %}calibrated_weight * {{ a }}{% endcall %} as calibrated_x_{{ loop.index }},
        {% endfor -%}
        count(*) as n_respondents,
        {% call surveysynth.dagg() %}base_weight{% endcall %} as base_total,
        {% call surveysynth.dagg() %}calibrated_weight{% endcall %} as calibrated_total
    from weights
    group by wave{% for d in dims %}, {{ d }}{% endfor %}

),

achieved as (

    {{ surveysynth.margin_achieved(specs, aux, ['wave'], 'n_respondents',
        [('base_total', 'base_x_'), ('calibrated_total', 'calibrated_x_')]) }}

),

raw_joined as (

    select
        coalesce(margins.margin_id, achieved.margin_id) as margin_id,
        margins.margin_kind,
        margins.variable,
        margins.margin_dims,
        coalesce(margins.category, achieved.category) as category,
        coalesce(margins.wave, achieved.wave) as wave,
        margins.target as population_target,
        coalesce(achieved.n_respondents, 0) as n_respondents,
        coalesce(achieved.base_total, 0.0) as base_total,
        coalesce(achieved.calibrated_total, 0.0) as calibrated_total
    from margins
    full outer join achieved
        on margins.margin_id = achieved.margin_id
        and margins.wave = achieved.wave
        and margins.category = achieved.category

),

{#- the collapse rule of the rake macro (ss_calibration_uncovered: collapse), recomputed here -#}
margin_scales as (

    select
        margin_id,
        wave,
        {% call surveysynth.dagg() %}coalesce(population_target, 0){% endcall %} as t_all,
        {% call surveysynth.dagg() %}case when n_respondents > 0 then coalesce(population_target, 0) else 0 end{% endcall %} as t_covered,
        {% call surveysynth.dagg() %}case when n_respondents = 0 and population_target <> 0 then 1 else 0 end{% endcall %} as n_collapsed
    from raw_joined
    group by margin_id, wave

),

joined as (

    select
        raw_joined.*,
        {% if collapse -%}
        case
            when margin_scales.n_collapsed > 0 and margin_scales.t_covered <> 0 then
                case
                    when raw_joined.n_respondents > 0
                        then raw_joined.population_target * margin_scales.t_all / margin_scales.t_covered
                    else 0.0
                end
            else raw_joined.population_target
        end as target,
        case
            when margin_scales.t_covered <> 0 and raw_joined.n_respondents = 0
                and raw_joined.population_target <> 0 then true
            else false
        end as collapsed
        {%- else -%}
        raw_joined.population_target as target,
        false as collapsed
        {%- endif %}
    from raw_joined
    left join margin_scales
        on raw_joined.margin_id = margin_scales.margin_id
        and raw_joined.wave = margin_scales.wave

),

checked as (

    select
        joined.*,
        coalesce(convergence.fallback, 'none') as fallback,
{{ surveysynth.margin_status('n_respondents', 'no_respondents', tol) }}
    from joined
    left join convergence
        on joined.wave = convergence.wave

),

final as (

    select
        margin_id,
        margin_kind,
        variable,
        margin_dims,
        category,
        wave,
        target,
        population_target,
        n_respondents,
        base_total,
        calibrated_total,
        relative_error,
        fallback,
        case
            when collapsed then 'collapsed'
            when fallback = 'first_margin' and margin_id <> '{{ specs.counts[0].id }}' and status <> 'ok' then 'relaxed'
            else status
        end as status,
        {{ tol }} as tolerance,
        case
            when fallback = 'first_margin' and margin_id <> '{{ specs.counts[0].id }}' and status <> 'ok' and not collapsed
                then {{ dbt.concat(["'margin '''", "margin_id", "''' category '''", "category", "''' (wave '", t('wave'),
                "'): relaxed: the raking of this wave did not converge within ss_rake_max_iter sweeps (these respondents "
                ~ "cannot meet every margin), so its weights are post-stratified to the first margin alone (ss_rake_fallback: "
                ~ "first_margin); calibrated total '", t('calibrated_total'), "', target '", t('target'), "''"]) }}
            when collapsed then {{ dbt.concat(["'margin '''", "margin_id", "''' category '''", "category", "''' (wave '", t('wave'),
                "'): target '", t('population_target'), "' but no respondents; collapsed: its target is spread over the "
                ~ "covered categories of the margin in proportion to their targets (var ss_calibration_uncovered)'"]) }}
            when status = 'ok' then 'within tolerance'
            when status = 'no_target' then {{ dbt.concat(["'margin '''", "margin_id", "''' category '''", "category", "''' (wave '", t('wave'),
                "'): '", t('n_respondents'), "' respondent(s) in a category with no target in calibration_margins'"]) }}
            when status = 'no_respondents' then {{ dbt.concat(["'margin '''", "margin_id", "''' category '''", "category", "''' (wave '", t('wave'),
                "'): target '", t('target'), "' but no respondents in this category, so no weight can reach it. "
                ~ "Set ss_calibration_uncovered: collapse, merge the category with a neighbour in ss_calibration_margins or drop the margin'"]) }}
            else {{ dbt.concat(["'margin '''", "margin_id", "''' category '''", "category", "''' (wave '", t('wave'),
                "'): target '", t('target'), "', calibrated total '", t('calibrated_total'), "', relative error '", t('relative_error'),
                "' above tolerance " ~ tol ~ ". The raking did not converge within ss_rake_max_iter sweeps, or the bounds (ss_rake_bounds) make the target unreachable'"]) }}
        end as message
    from checked

)

select * from final
