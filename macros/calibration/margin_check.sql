{#- Building blocks shared by the margin checks of the real calibration (calibration_margin_check)
    and of the augmented implicates (augmented_margin_check), and by their convergence summaries. -#}

{#- What the weights reach for every margin category: one select per count margin and per total
    margin over the CTE ``cell_sums``, joined by union all. ``keys``: the grouping columns besides the
    category (wave; implicate and wave). ``count_col``: the column summed into a count of units.
    ``measures``: (output column, prefix) pairs; a count margin sums the output column itself, a total
    margin sums prefix ~ k, the k-th auxiliary's weighted sum (1-based in ``aux``). -#}
{% macro margin_achieved(specs, aux, keys, count_col, measures) -%}
    {%- set parts = [] -%}
    {%- for m in specs.counts -%}
        {%- do parts.append(surveysynth._margin_achieved_select(m, keys, count_col, measures, none)) -%}
    {%- endfor -%}
    {%- for m in specs.totals -%}
        {%- do parts.append(surveysynth._margin_achieved_select(m, keys, count_col, measures, aux.index(m.variable) + 1)) -%}
    {%- endfor -%}
    {{ parts | join('\n    union all\n    ') }}
{%- endmacro %}

{% macro _margin_achieved_select(m, keys, count_col, measures, k) -%}
    {%- set category = surveysynth.category_key_expr(m.dims) -%}
    select
        '{{ m.id }}' as margin_id,
        {% for key in keys -%}
        {{ key }},
        {% endfor -%}
        {{ category }} as category,
        {% call surveysynth.dagg() %}{{ count_col }}{% endcall %} as {{ count_col }}
        {%- for out, prefix in measures %},
        {% call surveysynth.dagg() %}{{ out if k is none else prefix ~ k }}{% endcall %} as {{ out }}
        {%- endfor %}
    from cell_sums
    group by {{ keys | join(', ') }}{% if m.dims %}, {{ category }}{% endif %}
{%- endmacro %}

{#- relative_error and status of a joined target / calibrated_total row: no_target (units in a
    category without a target), ``no_units_status`` (a nonzero target with no unit to carry it),
    missed (relative error above the tolerance) or ok. -#}
{% macro margin_status(count_col, no_units_status, tol) -%}
    {%- set relerr = surveysynth._rake_relerr('calibrated_total', 'target') -%}
        {{ relerr }} as relative_error,
        case
            when target is null then 'no_target'
            when {{ count_col }} = 0 and target <> 0 then '{{ no_units_status }}'
            when {{ relerr }} > {{ tol }} + 1e-12 then 'missed'
            else 'ok'
        end as status
{%- endmacro %}

{#- Convergence of the raking per group (``keys``) from a table of rake factors per cell. -#}
{% macro rake_convergence(factors, keys) -%}
    {%- set settings = surveysynth.rake_settings() -%}
    select
        {% for key in keys -%}
        {{ key }},
        {% endfor -%}
        max(iterations) as iterations,
        max(max_rel_error) as max_rel_error,
        max(n_uncovered_categories) as n_uncovered_categories,
        max(n_collapsed_categories) as n_collapsed_categories,
        min(case when converged then 1 else 0 end) = 1 as converged,
        max(fallback) as fallback,
        {{ settings.tol }} as tolerance,
        {{ settings.max_iter }} as max_iterations,
        min(rake_alpha) as min_cell_factor,
        max(rake_alpha) as max_cell_factor,
        count(*) as n_cells
    from {{ factors }}
    group by {{ keys | join(', ') }}
{%- endmacro %}
