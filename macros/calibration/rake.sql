{#- Raking (iterative proportional fitting) to population margins, compiled to SQL by dbt.

    rake_factors(units, weight, margins, ...)  one row per group x cell: the factors alpha (and
        beta per auxiliary), iterations, max_rel_error, n_uncovered_categories, converged.
    rake_apply(units, weight, factors, ...)    every unit with base_weight, calibrated_weight, g.
    rake(units, weight, margins, ...)          both in one statement (for synthetic records).

    Arguments
      units            relation (or subquery) with the unit columns, the group columns, the
                       dimensions the margins use, the weight column and the auxiliaries of totals
      weight           column of `units` holding the starting (base) weight d
      margins          relation in the long format of calibration_margins: margin_id, category,
                       target, population_count, and the margin_group_by columns
      margin_specs     calibration_specs() shape ({counts: [...], totals: [...]}); default: vars
      group_by         columns calibrated separately (default ['wave'])
      margin_group_by  the columns of `margins` matched to the groups (default group_by)
      cell_key         optional unit column that determines every margin dimension (e.g. cell_id):
                       the cell table is keyed and joined on it instead of on the dimensions
      cells            optional small relation with cell_key and the margin dimensions (e.g.
                       population_cells): the dimensions are looked up there instead of being
                       carried through the aggregation of the units (cheaper on big inputs)
      unit_columns     columns of `units` passed through by rake_apply / rake
      weight_columns   which of base_weight, calibrated_weight, g rake_apply / rake write (all)
      tol, max_iter, bounds ([L, U]), method ('auto' | 'recursive' | 'unrolled'); default: vars

    Cost: one aggregation scan of `units` into the cell table, the sweeps on the cell table, and
    one join of `units` to the per-cell factors; the sweeps never touch the units.
    For large inputs prefer rake_factors and rake_apply as two models (as calibrated_weights
    does): DuckDB cannot estimate the size of a recursive CTE's result, so inside one statement it
    may build the join's hash table on the units instead of the small factor table. -#}

{% macro rake_factors(units, weight, margins, margin_specs=none, group_by=none, margin_group_by=none,
                      cell_key=none, tol=none, max_iter=none, bounds=none, method=none, cells=none) %}
    {%- set plan = surveysynth._rake_plan(units, weight, margins, margin_specs, group_by, margin_group_by,
                                          cell_key, tol, max_iter, bounds, method, cells) -%}
    {%- set recursive = surveysynth.rake_uses_recursive(plan.method) -%}
    {%- set A = plan.aux | length -%}
    {%- set grp = plan.group_by -%}
    {%- set mg = plan.margin_group_by -%}

{%- set rk_head %}
rk_sums as (

    select
        {% for c in grp + plan.key_cols -%}
        {{ c }},
        {% endfor -%}
        {% if plan.cells is none -%}
        {% for d in plan.carried -%}
        {{ surveysynth.any_value(d) }} as {{ d }},
        {% endfor -%}
        {% endif -%}
        {% for a in range(1, A + 1) -%}
        {%- set x = 'coalesce(' ~ plan.aux[a - 1] ~ ', 0)' -%}
        {% call surveysynth.dagg() %}{{ weight }} * {{ x }}{% endcall %} as rk_sx_{{ a }},
        min({{ x }}) as rk_lo_{{ a }},
        max({{ x }}) as rk_hi_{{ a }},
        {% endfor -%}
        {% for a, b in plan.pairs -%}
        {% call surveysynth.dagg() %}{{ weight }} * coalesce({{ plan.aux[a - 1] }}, 0) * coalesce({{ plan.aux[b - 1] }}, 0){% endcall %} as rk_sxx_{{ a }}_{{ b }},
        {% endfor -%}
        {% call surveysynth.dagg() %}{{ weight }}{% endcall %} as rk_s0
    from {{ units }}
    group by {{ (grp + plan.key_cols) | join(', ') }}

),

{#- the cell dimensions: carried through the sums, or looked up in the small `cells` relation -#}
rk_cells as (

    {% if plan.cells is none -%}
    select * from rk_sums
    {%- else -%}
    {#- a left join: a cell missing from the lookup keeps its row, gets no target and is reported
        as not converged, never silently dropped -#}
    select rk_sums.*{% for d in plan.carried %}, rk_lookup.{{ d }}{% endfor %}
    from rk_sums
    left join {{ plan.cells }} as rk_lookup
        on rk_sums.{{ cell_key }} = rk_lookup.{{ cell_key }}
    {%- endif %}

),

{#- margin categories present among the units of each group -#}
rk_present as (

    {% for m in plan.counts + plan.totals -%}
    select distinct {% for c in grp %}{{ c }}, {% endfor %}'{{ m.id }}' as margin_id,
        coalesce({{ surveysynth.category_key_expr(m.dims, 'rk_cells') }}, '(missing)') as category
    from rk_cells
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{#- the targets per group; a category with a target and no unit in the group is collapsed
    (ss_calibration_uncovered: collapse): its target is spread over the covered categories of the
    same margin in proportion to their targets, so the margin keeps its total and agrees with the
    other margins, and the category itself gets target 0 -#}
rk_targets as (

    select
        {% for c in grp -%}
        rk_g.{{ c }},
        {% endfor -%}
        rk_tg.margin_id,
        rk_tg.category,
        rk_tg.target as rk_raw_target,
        case when rk_p.margin_id is null then 0 else 1 end as rk_covered
    from {{ margins }} as rk_tg
    inner join (select distinct {{ grp | join(', ') }} from rk_cells) as rk_g
        on {% for c in mg %}rk_tg.{{ c }} = rk_g.{{ c }}{{ ' and ' if not loop.last }}{% endfor %}
    left join rk_present as rk_p
        on rk_p.margin_id = rk_tg.margin_id
        and rk_p.category = rk_tg.category
        {% for c in grp %}and rk_p.{{ c }} = rk_g.{{ c }} {% endfor %}
    where rk_tg.margin_id in ({% for m in plan.counts + plan.totals %}'{{ m.id }}'{{ ', ' if not loop.last }}{% endfor %})

),

rk_scales as (

    select
        {% for c in grp -%}
        {{ c }},
        {% endfor -%}
        margin_id,
        {% call surveysynth.dagg() %}rk_raw_target{% endcall %} as rk_t_all,
        {% call surveysynth.dagg() %}case when rk_covered = 1 then rk_raw_target else 0 end{% endcall %} as rk_t_covered,
        {% call surveysynth.dagg() %}case when rk_covered = 0 and rk_raw_target <> 0 then 1 else 0 end{% endcall %} as rk_n_collapsed
    from rk_targets
    group by {{ grp | join(', ') }}, margin_id

),

rk_margins as (

    select
        rk_targets.*,
        rk_scales.rk_n_collapsed,
        case
            {% if plan.uncovered == 'collapse' -%}
            when rk_scales.rk_n_collapsed > 0 and rk_scales.rk_t_covered <> 0 then
                case when rk_targets.rk_covered = 1
                    then rk_targets.rk_raw_target * rk_scales.rk_t_all / rk_scales.rk_t_covered
                    else 0.0 end
            {% endif -%}
            when 1 = 1 then rk_targets.rk_raw_target
        end as target
    from rk_targets
    inner join rk_scales
        on rk_targets.margin_id = rk_scales.margin_id
        {% for c in grp %}and rk_targets.{{ c }} = rk_scales.{{ c }} {% endfor %}

),

rk_start as (

    select
        {% for c in grp + plan.key_cols + plan.carried -%}
        rk_cells.{{ c }},
        {% endfor -%}
        {% for m in plan.counts -%}
        {#- never null (a null key would drop the cell from the group-by joins): a cell with a
            missing dimension gets no target and fails convergence instead -#}
        coalesce({{ surveysynth.category_key_expr(m.dims, 'rk_cells') }}, '(missing)') as rk_cat_{{ loop.index }},
        rk_m{{ loop.index }}.target as rk_t_{{ loop.index }},
        {% endfor -%}
        {% for t in plan.totals -%}
        rk_x{{ t.j }}.target as rk_tx_{{ t.j }},
        {% endfor -%}
        rk_cells.rk_s0,
        {% for a in range(1, A + 1) -%}
        rk_cells.rk_sx_{{ a }},
        (rk_cells.rk_lo_{{ a }} + rk_cells.rk_hi_{{ a }}) / 2.0 as rk_mid_{{ a }},
        (rk_cells.rk_hi_{{ a }} - rk_cells.rk_lo_{{ a }}) / 2.0 as rk_rad_{{ a }},
        {% endfor -%}
        {% for a, b in plan.pairs -%}
        rk_cells.rk_sxx_{{ a }}_{{ b }},
        {% endfor -%}
        0 as rk_sweep,
        cast(1.0 as {{ surveysynth.type_double() }}) as rk_alpha
        {%- for a in range(1, A + 1) %},
        cast(0.0 as {{ surveysynth.type_double() }}) as rk_beta_{{ a }}
        {%- endfor %}
    from rk_cells
    {% for m in plan.counts -%}
    {%- set i = loop.index -%}
    left join rk_margins as rk_m{{ i }}
        on rk_m{{ i }}.margin_id = '{{ m.id }}'
        and rk_m{{ i }}.category = {{ surveysynth.category_key_expr(m.dims, 'rk_cells') }}
        {% for c in grp -%}
        and rk_m{{ i }}.{{ c }} = rk_cells.{{ c }}
        {% endfor %}
    {% endfor -%}
    {% for t in plan.totals -%}
    left join rk_margins as rk_x{{ t.j }}
        on rk_x{{ t.j }}.margin_id = '{{ t.id }}'
        and rk_x{{ t.j }}.category = {{ surveysynth.category_key_expr(t.dims, 'rk_cells') }}
        {% for c in grp -%}
        and rk_x{{ t.j }}.{{ c }} = rk_cells.{{ c }}
        {% endfor %}
    {% endfor %}

)
{%- endset %}

with {{ 'recursive ' if recursive }}{{ rk_head }},

{{ surveysynth.rake_iterate(plan, rk_head) }}

rk_groups as (

    select distinct {{ grp | join(', ') }} from rk_last

),

{#- margin categories with a nonzero target and no unit at all: no weight can reach them
    (collapsed categories have target 0 by now, so only ss_calibration_uncovered: fail leaves any) -#}
rk_uncovered as (

    select {{ grp | join(', ') }}, margin_id, category
    from rk_margins
    where rk_covered = 0
        and target <> 0

),

rk_collapsed_counts as (

    select {{ grp | join(', ') }}, {% call surveysynth.dagg() %}rk_n_collapsed{% endcall %} as n_collapsed
    from rk_scales
    group by {{ grp | join(', ') }}

),

rk_uncovered_counts as (

    select {{ grp | join(', ') }}, count(*) as n_uncovered
    from rk_uncovered
    group by {{ grp | join(', ') }}

),

{#- the fallback of a group whose raking did not converge (ss_rake_fallback: first_margin): the
    cells' factors post-stratify the base weights to the first count margin alone, which is always
    reachable (its uncovered categories collapsed), and the other margins are left as they fall -#}
rk_fallback as (

    select
        {{ grp | join(', ') }},
        rk_cat_1,
        case when {% call surveysynth.dagg() %}rk_s0{% endcall %} > 0 then max(rk_t_1) / {% call surveysynth.dagg() %}rk_s0{% endcall %} else 0e0 end as rk_fb_alpha
    from rk_last
    group by {{ grp | join(', ') }}, rk_cat_1

),

rk_result as (

    select
        rk_last.*,
        case
            when rk_last.rk_err <= {{ plan.tol }} and coalesce(rk_uncovered_counts.n_uncovered, 0) = 0 then 1
            else 0
        end as rk_converged,
        coalesce(rk_uncovered_counts.n_uncovered, 0) as rk_n_uncovered,
        rk_fallback.rk_fb_alpha
    from rk_last
    left join rk_uncovered_counts
        on {% for c in grp %}rk_last.{{ c }} = rk_uncovered_counts.{{ c }}{{ ' and ' if not loop.last }}{% endfor %}
    left join rk_fallback
        on rk_last.rk_cat_1 = rk_fallback.rk_cat_1
        {% for c in grp %}and rk_last.{{ c }} = rk_fallback.{{ c }} {% endfor %}

)

{%- set fb = plan.fallback == 'first_margin' -%}
select
    {% for c in grp + plan.key_cols + plan.carried -%}
    rk_result.{{ c }},
    {% endfor -%}
    {% if fb -%}
    case when rk_result.rk_converged = 1 then rk_result.rk_alpha else rk_result.rk_fb_alpha end as rake_alpha,
    {% else -%}
    rk_result.rk_alpha as rake_alpha,
    {% endif -%}
    {% for a in range(1, A + 1) -%}
    {% if fb -%}
    case when rk_result.rk_converged = 1 then rk_result.rk_beta_{{ a }} else 0e0 end as rake_beta_{{ a }},
    {% else -%}
    rk_result.rk_beta_{{ a }} as rake_beta_{{ a }},
    {% endif -%}
    {% endfor -%}
    rk_result.rk_sweep as iterations,
    rk_result.rk_err as sweep_max_rel_error,
    rk_result.rk_n_uncovered as n_uncovered_categories,
    {{ 'coalesce(rk_collapsed_counts.n_collapsed, 0)' if plan.uncovered == 'collapse' else '0' }} as n_collapsed_categories,
    case
        when rk_result.rk_n_uncovered > 0 then greatest(rk_result.rk_err, 1.0)
        else rk_result.rk_err
    end as max_rel_error,
    rk_result.rk_converged = 1 as converged,
    case
        when rk_result.rk_converged = 1 then 'none'
        else '{{ 'first_margin' if fb else 'none' }}'
    end as fallback
from rk_result
left join rk_collapsed_counts
    on {% for c in grp %}rk_result.{{ c }} = rk_collapsed_counts.{{ c }}{{ ' and ' if not loop.last }}{% endfor %}
{% endmacro %}


{% macro rake_apply(units, weight, factors, margin_specs=none, unit_columns=[], group_by=none,
                    cell_key=none, weight_columns=['base_weight', 'calibrated_weight', 'g']) %}
    {%- set plan = surveysynth._rake_plan(units, weight, none, margin_specs, group_by, none, cell_key) -%}
    {%- set g_parts = ['rk_f.rake_alpha'] -%}
    {%- for a in range(1, plan.aux | length + 1) -%}
        {%- do g_parts.append('rk_f.rake_beta_' ~ a ~ ' * coalesce(rk_u.' ~ plan.aux[a - 1] ~ ', 0)') -%}
    {%- endfor -%}
    {%- set g = g_parts | join(' + ') -%}
    {%- set out_cols = [] -%}
    {%- for c in unit_columns + plan.group_by -%}{%- if c not in out_cols -%}{%- do out_cols.append(c) -%}{%- endif -%}{%- endfor -%}
    {%- set exprs = {'base_weight': 'rk_u.' ~ weight, 'calibrated_weight': 'rk_u.' ~ weight ~ ' * (' ~ g ~ ')', 'g': g} -%}
    {%- set outs = [] -%}
    {%- for c in out_cols %}{% do outs.append('rk_u.' ~ c) %}{% endfor -%}
    {%- for c in weight_columns %}{% do outs.append(exprs[c] ~ ' as ' ~ c) %}{% endfor -%}
select
    {{ outs | join(',\n    ') }}
from {{ units }} as rk_u
left join {{ factors }} as rk_f
    on {% for c in plan.group_by + plan.key_cols %}rk_u.{{ c }} = rk_f.{{ c }}{{ ' and ' if not loop.last }}{% endfor %}
{% endmacro %}


{% macro rake(units, weight, margins, margin_specs=none, unit_columns=[], group_by=none,
              margin_group_by=none, cell_key=none, tol=none, max_iter=none, bounds=none, method=none,
              weight_columns=['base_weight', 'calibrated_weight', 'g'], cells=none) %}
with rk_factors as (

    {{ surveysynth.rake_factors(units, weight, margins, margin_specs, group_by, margin_group_by,
                                cell_key, tol, max_iter, bounds, method, cells) }}

)

{{ surveysynth.rake_apply(units, weight, 'rk_factors', margin_specs, unit_columns, group_by, cell_key, weight_columns) }}
{% endmacro %}
