{#- One raking sweep over the cell table, as one SELECT (nested subqueries, windows only over the
    group x margin category), so the iteration can be unrolled or run in a recursive CTE alike.

    Step for count margin m, category k:   alpha, beta *= T_mk / sum_{c in k} W_c
    Step for the known total of x_a in category k (its `by` dims): the linear (GREG, chi-square)
    step that meets both the category count N_k and total X_k,
        alpha += l0, beta_a += l1,  [A00 A01; A01 A11] [l0; l1] = [N_k - sum W; X_k - sum W x_a]
    with A = sums of d, d x_a, d x_a^2 over the category (x constant in the category: a ratio step).
    After every step the bounds are enforced on g = alpha + sum_a beta_a x_a (see _rake_clip).
    A sweep reads plan.static, rk_sweep, plan.state and rk_err; it leaves the state of a group
    unchanged (frozen) once its error is within tol or max_iter sweeps are done (rk_live false),
    so chained sweeps reproduce the stopping rule of a loop. Steps carry plan.carry (static,
    rk_sweep, rk_live) and the state; the error stage drops rk_live and adds rk_err. -#}

{% macro _rake_cols(cols, alias='') %}
    {%- set p = (alias ~ '.') if alias else '' -%}
    {%- set out = [] -%}
    {%- for c in cols %}{% do out.append(p ~ c) %}{% endfor -%}
    {{ return(out | join(', ')) }}
{% endmacro %}

{% macro _rake_partition(plan, cat_col) %}
    {{ return('partition by ' ~ (plan.group_by + [cat_col]) | join(', ')) }}
{% endmacro %}

{#- Bounds on g after a step. Count margins only: g = alpha is clipped to [L, U], as in bounded
    raking. With auxiliaries g is linear in x within a cell; its range over the cell's box of x
    values is [gm - h, gm + h] (gm at the box centre, h the half-width): gm is clipped and the
    slopes shrunk until the whole range fits, so every unit's g is within [L, U]. -#}
{% macro _rake_clip(plan, source, n) %}
    {%- set L = plan.lower -%}{%- set U = plan.upper -%}
    {%- set A = plan.aux | length -%}
    {%- if A == 0 -%}
        {%- if L == 0 and U is none -%}
            {{ return(source) }}
        {%- endif -%}
        {%- set clipped = 'greatest(rk_alpha, ' ~ L ~ ')' -%}
        {%- if U is not none %}{% set clipped = 'least(' ~ clipped ~ ', ' ~ U ~ ')' %}{% endif -%}
        {{ return('select ' ~ surveysynth._rake_cols(plan.carry) ~ ', case when rk_live then ' ~ clipped ~ ' else rk_alpha end as rk_alpha from (' ~ source ~ ') as rk_c' ~ n) }}
    {%- endif -%}
    {%- set gm = ['rk_alpha'] -%}{%- set h = [] -%}
    {%- for a in range(1, A + 1) -%}
        {%- do gm.append('rk_beta_' ~ a ~ ' * rk_mid_' ~ a) -%}
        {%- do h.append('abs(rk_beta_' ~ a ~ ') * rk_rad_' ~ a) -%}
    {%- endfor -%}
    {%- set gmc = 'greatest(rk_gm, ' ~ L ~ ')' -%}
    {%- if U is not none %}{% set gmc = 'least(' ~ gmc ~ ', ' ~ U ~ ')' %}{% endif -%}
    {%- set hc = 'least(rk_h, rk_gmc - ' ~ L ~ ((', ' ~ U ~ ' - rk_gmc') if U is not none else '') ~ ')' -%}
    {%- set shifted = [] -%}
    {%- for a in range(1, A + 1) %}{% do shifted.append('rk_beta_' ~ a ~ ' * rk_k * rk_mid_' ~ a) %}{% endfor -%}
    {%- set sql -%}
        select {{ surveysynth._rake_cols(plan.carry) }},
            case when not rk_live or (rk_k = 1.0 and rk_gm = rk_gmc) then rk_alpha
                else rk_gmc - ({{ shifted | join(' + ') }}) end as rk_alpha
            {%- for a in range(1, A + 1) %},
            case when rk_live then rk_beta_{{ a }} * rk_k else rk_beta_{{ a }} end as rk_beta_{{ a }}
            {%- endfor %}
        from (
            select rk_c{{ n }}b.*, case when rk_h > rk_hc then rk_hc / rk_h else 1.0 end as rk_k
            from (
                select rk_c{{ n }}a.*, {{ hc }} as rk_hc
                from (
                    select rk_c{{ n }}.*, {{ gmc }} as rk_gmc
                    from (
                        select rk_src{{ n }}.*, {{ gm | join(' + ') }} as rk_gm, {{ h | join(' + ') }} as rk_h
                        from ({{ source }}) as rk_src{{ n }}
                    ) as rk_c{{ n }}
                ) as rk_c{{ n }}a
            ) as rk_c{{ n }}b
        ) as rk_c{{ n }}c
    {%- endset -%}
    {{ return(sql) }}
{% endmacro %}

{% macro _rake_count_step(plan, source, i, n) %}
    {%- set scaled = [] -%}
    {%- for s in plan.state %}{% do scaled.append(s ~ ' * rk_f as ' ~ s) %}{% endfor -%}
    {%- set sql -%}
        select {{ surveysynth._rake_cols(plan.carry) }}, {{ scaled | join(', ') }}
        from (
            select rk_in{{ n }}.*,
                case when rk_live then coalesce(rk_t_{{ i }} / nullif({% call surveysynth.dagg() %}{{ surveysynth._rake_w(plan) }}{% endcall %} over ({{ surveysynth._rake_partition(plan, 'rk_cat_' ~ i) }}), 0), 1.0)
                    else 1.0 end as rk_f
            from ({{ source }}) as rk_in{{ n }}
        ) as rk_step{{ n }}
    {%- endset -%}
    {{ return(surveysynth._rake_clip(plan, sql, n)) }}
{% endmacro %}

{#- A total step's new factors: the ratio update (rk_f) where the 2 x 2 system is singular, else
    the linear (GREG-like) update of alpha and of the total's beta by (rk_l0, rk_l1). -#}
{% macro _rake_total_outputs(plan, a) %}
    {%- set out = ['case when rk_ratio then rk_alpha * rk_f else rk_alpha + rk_l0 end as rk_alpha'] -%}
    {%- for b in range(1, plan.aux | length + 1) -%}
        {%- set add = ' + rk_l1' if b == a else '' -%}
        {%- do out.append('case when rk_ratio then rk_beta_' ~ b ~ ' * rk_f else rk_beta_' ~ b ~ add ~ ' end as rk_beta_' ~ b) -%}
    {%- endfor -%}
    {{ return(out) }}
{% endmacro %}

{#- Solve the 2 x 2 system [a00 a01; a01 a11] (l0, l1) = (r0, r1) of a total step, with the
    ratio factor and the singularity flag beside it. -#}
{% macro _rake_total_solve(t) -%}
    case when rk_live then coalesce((rk_a11 * rk_r0 - rk_a01 * rk_r1) / nullif(rk_det, 0), 0.0) else 0.0 end as rk_l0,
                case when rk_live then coalesce((rk_a00 * rk_r1 - rk_a01 * rk_r0) / nullif(rk_det, 0), 0.0) else 0.0 end as rk_l1,
                case when rk_live then coalesce(rk_tx_{{ t.j }} / nullif(rk_swx, 0), 1.0) else 1.0 end as rk_f,
                (rk_det <= 1e-12 * rk_a00 * rk_a11) as rk_ratio
{%- endmacro %}

{% macro _rake_total_step(plan, source, t, n) %}
    {%- set a = t.a -%}
    {%- set part = surveysynth._rake_partition(plan, 'rk_cat_' ~ t.ci) -%}
    {%- set out = surveysynth._rake_total_outputs(plan, a) -%}
    {%- set sql -%}
        select {{ surveysynth._rake_cols(plan.carry) }}, {{ out | join(', ') }}
        from (
            select rk_s{{ n }}b.*,
                {{ surveysynth._rake_total_solve(t) }}
            from (
                select rk_s{{ n }}a.*, rk_a00 * rk_a11 - rk_a01 * rk_a01 as rk_det
                from (
                    select rk_src{{ n }}.*,
                        {% call surveysynth.dagg() %}rk_s0{% endcall %} over ({{ part }}) as rk_a00,
                        {% call surveysynth.dagg() %}rk_sx_{{ a }}{% endcall %} over ({{ part }}) as rk_a01,
                        {% call surveysynth.dagg() %}rk_sxx_{{ a }}_{{ a }}{% endcall %} over ({{ part }}) as rk_a11,
                        rk_t_{{ t.ci }} - {% call surveysynth.dagg() %}{{ surveysynth._rake_w(plan) }}{% endcall %} over ({{ part }}) as rk_r0,
                        rk_tx_{{ t.j }} - {% call surveysynth.dagg() %}{{ surveysynth._rake_wx(plan, a) }}{% endcall %} over ({{ part }}) as rk_r1,
                        {% call surveysynth.dagg() %}{{ surveysynth._rake_wx(plan, a) }}{% endcall %} over ({{ part }}) as rk_swx
                    from ({{ source }}) as rk_src{{ n }}
                ) as rk_s{{ n }}a
            ) as rk_s{{ n }}b
        ) as rk_s{{ n }}c
    {%- endset -%}
    {{ return(surveysynth._rake_clip(plan, sql, n)) }}
{% endmacro %}

{#- The largest relative error over every margin and category, per group, as rk_err. -#}
{% macro _rake_error_stage(plan, source, n) %}
    {%- set sums = [] -%}{%- set errs = [] -%}
    {%- for m in plan.counts -%}
        {%- do sums.append(surveysynth.dagg('sum', surveysynth._rake_w(plan)) ~ ' over (' ~ surveysynth._rake_partition(plan, 'rk_cat_' ~ loop.index) ~ ') as rk_sum_' ~ loop.index) -%}
        {%- do errs.append(surveysynth._rake_relerr('rk_sum_' ~ loop.index, 'rk_t_' ~ loop.index)) -%}
    {%- endfor -%}
    {%- for t in plan.totals -%}
        {%- do sums.append(surveysynth.dagg('sum', surveysynth._rake_wx(plan, t.a)) ~ ' over (' ~ surveysynth._rake_partition(plan, 'rk_cat_' ~ t.ci) ~ ') as rk_sumx_' ~ t.j) -%}
        {%- do errs.append(surveysynth._rake_relerr('rk_sumx_' ~ t.j, 'rk_tx_' ~ t.j)) -%}
    {%- endfor -%}
    {%- set e = errs[0] if errs | length == 1 else 'greatest(' ~ errs | join(', ') ~ ')' -%}
    {%- set sql -%}
        select {{ surveysynth._rake_cols(plan.static + ['rk_sweep'] + plan.state) }},
            max(rk_e) over (partition by {{ plan.group_by | join(', ') }}) as rk_err
        from (
            select rk_e{{ n }}a.*, {{ e }} as rk_e
            from (
                select rk_src{{ n }}.*, {{ sums | join(', ') }}
                from ({{ source }}) as rk_src{{ n }}
            ) as rk_e{{ n }}a
        ) as rk_e{{ n }}b
    {%- endset -%}
    {{ return(sql) }}
{% endmacro %}

{#- One sweep: every count margin in order, then every known total, then the error. -#}
{% macro _rake_sweep(plan, source, tag) %}
    {%- set live = '(rk_err > ' ~ plan.tol ~ ' and rk_sweep < ' ~ plan.max_iter ~ ')' -%}
    {%- set pre = 'select ' ~ surveysynth._rake_cols(plan.static) ~ ', case when ' ~ live ~ ' then rk_sweep + 1 else rk_sweep end as rk_sweep, '
        ~ live ~ ' as rk_live, ' ~ surveysynth._rake_cols(plan.state) ~ ' from (' ~ source ~ ') as rk_pre' ~ tag -%}
    {%- set ns = namespace(sql=pre, n=0) -%}
    {%- for m in plan.counts -%}
        {%- set ns.sql = surveysynth._rake_count_step(plan, ns.sql, loop.index, tag ~ '_' ~ ns.n) -%}
        {%- set ns.n = ns.n + 1 -%}
    {%- endfor -%}
    {%- for t in plan.totals -%}
        {%- set ns.sql = surveysynth._rake_total_step(plan, ns.sql, t, tag ~ '_' ~ ns.n) -%}
        {%- set ns.n = ns.n + 1 -%}
    {%- endfor -%}
    {{ return(surveysynth._rake_error_stage(plan, ns.sql, tag ~ '_e')) }}
{% endmacro %}


{#- ---------------------------------------------------------------------------------------------
    The same sweep with category sums by GROUP BY + JOIN instead of window functions: each step
    is a CTE that reads the one before twice (its sums, and its rows). On DuckDB this is several
    times faster than windows over the small cell table, so the recursive method uses it; engines
    that inline CTEs referenced twice (re-computing them) keep the window form (unrolled method).
    Same arithmetic, same columns, same results. ------------------------------------------------ -#}

{% macro _rake_join_on(plan, left, right, cat_col) %}
    {%- set conds = [] -%}
    {%- for c in plan.group_by + [cat_col] %}{% do conds.append(left ~ '.' ~ c ~ ' = ' ~ right ~ '.' ~ c) %}{% endfor -%}
    {{ return(conds | join(' and ')) }}
{% endmacro %}

{% macro _rake_count_step_join(plan, prev, i, n) %}
    {%- set cat = 'rk_cat_' ~ i -%}
    {%- set scaled = [] -%}
    {%- for s in plan.state %}{% do scaled.append('p.' ~ s ~ ' * rk_f as ' ~ s) %}{% endfor -%}
    {%- set sql -%}
        select {{ surveysynth._rake_cols(plan.carry) }}, {{ surveysynth._rake_cols(plan.state) }}
        from (
            select {{ surveysynth._rake_cols(plan.carry, 'p') }}, {{ scaled | join(', ') }}
            from (
                select p0.*,
                    case when p0.rk_live then coalesce(p0.rk_t_{{ i }} / nullif(g.rk_tot, 0), 1.0) else 1.0 end as rk_f
                from {{ prev }} as p0
                inner join (
                    select {{ (plan.group_by + [cat]) | join(', ') }}, {% call surveysynth.dagg() %}{{ surveysynth._rake_w(plan) }}{% endcall %} as rk_tot
                    from {{ prev }}
                    group by {{ (plan.group_by + [cat]) | join(', ') }}
                ) as g
                    on {{ surveysynth._rake_join_on(plan, 'p0', 'g', cat) }}
            ) as p
        ) as rk_j{{ n }}
    {%- endset -%}
    {{ return(surveysynth._rake_clip(plan, sql, n)) }}
{% endmacro %}

{% macro _rake_total_step_join(plan, prev, t, n) %}
    {%- set a = t.a -%}
    {%- set cat = 'rk_cat_' ~ t.ci -%}
    {%- set out = surveysynth._rake_total_outputs(plan, a) -%}
    {%- set sql -%}
        select {{ surveysynth._rake_cols(plan.carry) }}, {{ out | join(', ') }}
        from (
            select rk_s{{ n }}b.*,
                {{ surveysynth._rake_total_solve(t) }}
            from (
                select p0.*,
                    g.rk_a00, g.rk_a01, g.rk_a11,
                    p0.rk_t_{{ t.ci }} - g.rk_sw as rk_r0,
                    p0.rk_tx_{{ t.j }} - g.rk_swx as rk_r1,
                    g.rk_swx,
                    g.rk_a00 * g.rk_a11 - g.rk_a01 * g.rk_a01 as rk_det
                from {{ prev }} as p0
                inner join (
                    select {{ (plan.group_by + [cat]) | join(', ') }},
                        {% call surveysynth.dagg() %}rk_s0{% endcall %} as rk_a00,
                        {% call surveysynth.dagg() %}rk_sx_{{ a }}{% endcall %} as rk_a01,
                        {% call surveysynth.dagg() %}rk_sxx_{{ a }}_{{ a }}{% endcall %} as rk_a11,
                        {% call surveysynth.dagg() %}{{ surveysynth._rake_w(plan) }}{% endcall %} as rk_sw,
                        {% call surveysynth.dagg() %}{{ surveysynth._rake_wx(plan, a) }}{% endcall %} as rk_swx
                    from {{ prev }}
                    group by {{ (plan.group_by + [cat]) | join(', ') }}
                ) as g
                    on {{ surveysynth._rake_join_on(plan, 'p0', 'g', cat) }}
            ) as rk_s{{ n }}b
        ) as rk_s{{ n }}c
    {%- endset -%}
    {{ return(surveysynth._rake_clip(plan, sql, n)) }}
{% endmacro %}

{% macro _rake_error_stage_join(plan, prev, n) %}
    {%- set parts = [] -%}
    {%- for m in plan.counts -%}
        {%- set cat = 'rk_cat_' ~ loop.index -%}
        {%- do parts.append('select ' ~ plan.group_by | join(', ') ~ ', ' ~ surveysynth._rake_relerr('rk_tot', 'rk_t') ~ ' as rk_e from (select '
            ~ (plan.group_by + [cat]) | join(', ') ~ ', ' ~ surveysynth.dagg('sum', surveysynth._rake_w(plan)) ~ ' as rk_tot, max(rk_t_' ~ loop.index ~ ') as rk_t from '
            ~ prev ~ ' group by ' ~ (plan.group_by + [cat]) | join(', ') ~ ') as rk_m' ~ loop.index) -%}
    {%- endfor -%}
    {%- for t in plan.totals -%}
        {%- set cat = 'rk_cat_' ~ t.ci -%}
        {%- do parts.append('select ' ~ plan.group_by | join(', ') ~ ', ' ~ surveysynth._rake_relerr('rk_tot', 'rk_t') ~ ' as rk_e from (select '
            ~ (plan.group_by + [cat]) | join(', ') ~ ', ' ~ surveysynth.dagg('sum', surveysynth._rake_wx(plan, t.a)) ~ ' as rk_tot, max(rk_tx_' ~ t.j ~ ') as rk_t from '
            ~ prev ~ ' group by ' ~ (plan.group_by + [cat]) | join(', ') ~ ') as rk_x' ~ t.j) -%}
    {%- endfor -%}
    {%- set conds = [] -%}
    {%- for c in plan.group_by %}{% do conds.append('p.' ~ c ~ ' = e.' ~ c) %}{% endfor -%}
    {%- set sql -%}
        select {{ surveysynth._rake_cols(plan.static + ['rk_sweep'] + plan.state, 'p') }}, e.rk_err
        from {{ prev }} as p
        inner join (
            select {{ plan.group_by | join(', ') }}, max(rk_e) as rk_err
            from ({{ parts | join(' union all ') }}) as rk_all_{{ n }}
            group by {{ plan.group_by | join(', ') }}
        ) as e
            on {{ conds | join(' and ') }}
    {%- endset -%}
    {{ return(sql) }}
{% endmacro %}

{#- One sweep in join form: a nested WITH whose CTEs are the steps; reads `source` once. -#}
{% macro _rake_sweep_join(plan, source, tag) %}
    {%- set live = '(rk_err > ' ~ plan.tol ~ ' and rk_sweep < ' ~ plan.max_iter ~ ')' -%}
    {%- set ctes = [] -%}
    {%- do ctes.append('rk_' ~ tag ~ '_0 as (select ' ~ surveysynth._rake_cols(plan.static)
        ~ ', case when ' ~ live ~ ' then rk_sweep + 1 else rk_sweep end as rk_sweep, ' ~ live ~ ' as rk_live, '
        ~ surveysynth._rake_cols(plan.state) ~ ' from (' ~ source ~ ') as rk_pre_' ~ tag ~ ')') -%}
    {%- set ns = namespace(prev='rk_' ~ tag ~ '_0', n=1) -%}
    {%- for m in plan.counts -%}
        {%- set name = 'rk_' ~ tag ~ '_' ~ ns.n -%}
        {%- do ctes.append(name ~ ' as (' ~ surveysynth._rake_count_step_join(plan, ns.prev, loop.index, tag ~ '_' ~ ns.n) ~ ')') -%}
        {%- set ns.prev = name -%}{%- set ns.n = ns.n + 1 -%}
    {%- endfor -%}
    {%- for t in plan.totals -%}
        {%- set name = 'rk_' ~ tag ~ '_' ~ ns.n -%}
        {%- do ctes.append(name ~ ' as (' ~ surveysynth._rake_total_step_join(plan, ns.prev, t, tag ~ '_' ~ ns.n) ~ ')') -%}
        {%- set ns.prev = name -%}{%- set ns.n = ns.n + 1 -%}
    {%- endfor -%}
    {{ return('select * from (with ' ~ ctes | join(',\n') ~ '\n' ~ surveysynth._rake_error_stage_join(plan, ns.prev, tag) ~ ') as rk_sweep_' ~ tag) }}
{% endmacro %}
