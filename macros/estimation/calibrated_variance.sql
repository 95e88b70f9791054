{#- Calibration-aware linearised variance for direct_estimates (docs/estimation.md, "Variance of a
    calibrated estimator"). The calibrated weights w_i = g_c d_i of a raking to count margins are
    not fixed: the linearised variable of an estimate is the calibration residual
        z~_i = z_i - w_i x_i' beta,   beta = A^-1 sum_i d_i x_i z_i / w_i,   A = sum_i d_i x_i x_i',
    x_i the indicators of the unit's categories of the count margins (one category of every margin
    but the first left out, so A is invertible), d_i the base weight: the g-weighted residuals of
    R's calibrated designs (Deville & Sarndal 1992; Lumley 2010, ch. 7). Every margin is a function
    of the cell, so g, x and the fit f_c = x_c' beta are constant in a cell, and
        beta = A^-1 r,   r = sum_c x_c Z_c / g_c,   Z_c = sum_{i in c} z_i.
    With V(z) the stratified variance of the fixed-weight form,
        V(z~) = V(z) - 2 sum_h coef_h [sum_{c in h} f_c sum_{i in c and h} w_i z_i - Z_h s_h' beta / n_h]
                + r' K r,
    coef_h = (1 - f_h) n_h / (n_h - 1) (lonely stratum: 1 - f_h, no centring), s_h = sum_{c in h}
    W_ch x_c, K = A^-1 M A^-1 and M = sum_h coef_h [sum_{c in h} sum_{i in c and h} w_i^2 x_c x_c'
    - s_h s_h' / n_h]: every term is a sum over the strata the domain touches or a small p x p
    matrix per wave, never a pass over all cells per domain.
    Where Z_c = 0 in every cell (a Hajek mean or share of a cell: sum_{i in c} w_i (y_i - ybar_c)
    = 0) r = 0 and V(z~) = V(z): the fixed-weight form is the calibrated one there. -#}


{#- Whether the calibration-aware form applies: count margins only (known totals make g vary within
    a cell; then the fixed-weight form is kept and direct_estimates says so), and the var. -#}
{% macro calibrated_variance_enabled() %}
    {%- set specs = surveysynth.calibration_specs() -%}
    {{ return(var('ss_calibrated_variance', true) and (specs.totals | length) == 0 and (specs.counts | length) > 0) }}
{% endmacro %}


{#- The number of parameters p (an upper bound over waves), read from calibration_margins when the
    model runs (0 while parsing). -#}
{% macro calibration_parameter_count(margins_rel) %}
    {%- if not surveysynth.runs_queries() -%}{{ return(0) }}{%- endif -%}
    {%- set specs = surveysynth.calibration_specs() -%}
    {%- set ids = [] -%}
    {%- for m in specs.counts %}{% do ids.append("'" ~ m.id ~ "'") %}{% endfor -%}
    {%- set q -%}
        select coalesce(max(n), 0) from (
            select wave, count(*) - {{ (specs.counts | length) - 1 }} as n
            from {{ margins_rel }}
            where margin_id in ({{ ids | join(', ') }})
            group by wave
        ) as per_wave
    {%- endset -%}
    {%- set res = run_query(q) -%}
    {{ return((res.columns[0].values()[0] or 0) | int) }}
{% endmacro %}


{#- CTEs shared by every domain level (each ends with a comma): per cell the factor g, its base and
    calibrated weight sums and its parameters x_c; A^-1 by Gauss-Jordan; s_h, coef_h; K. `units`
    must hold wave, the cell dims, stratum_id, w, d (base weight) and g. -#}
{% macro calibrated_variance_ctes(dims, strata_rel, margins_rel, convergence_rel) %}
    {%- set specs = surveysynth.calibration_specs() -%}
    {%- set P = surveysynth.calibration_parameter_count(margins_rel) -%}
    {%- set dbl = surveysynth.type_double() -%}
cal_cell_strata as (

    select
        wave,
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        stratum_id,
        {% call surveysynth.dagg() %}w{% endcall %} as w_sum,
        {% call surveysynth.dagg() %}w * w{% endcall %} as ww_sum,
        {% call surveysynth.dagg() %}d{% endcall %} as d_sum,
        {% call surveysynth.dagg('avg') %}g{% endcall %} as g
    from units
    group by wave, {% for d in dims %}{{ d }}, {% endfor %}stratum_id

),

cal_cells as (

    select
        wave,
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        {% call surveysynth.dagg() %}d_sum{% endcall %} as d_sum,
        {% call surveysynth.dagg() %}g * d_sum{% endcall %} / {% call surveysynth.dagg() %}d_sum{% endcall %} as g
    from cal_cell_strata
    group by wave{% for d in dims %}, {{ d }}{% endfor %}

),

{#- every cell's category of every count margin the wave was calibrated to, long (a wave that fell
    back to post-stratification on the first margin, ss_rake_fallback, met that margin alone) -#}
cal_cell_categories as (

    {% for m in specs.counts -%}
    select
        cal_cells.wave,
        {% for d in dims -%}
        cal_cells.{{ d }},
        {% endfor -%}
        {{ loop.index }} as margin,
        {{ surveysynth.category_key_expr(m.dims, 'cal_cells') }} as category
    from cal_cells
    {% if not loop.first -%}
    inner join {{ convergence_rel }} as conv
        on cal_cells.wave = conv.wave
    where coalesce(conv.fallback, 'none') = 'none'
    {%- endif %}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{#- parameters: every margin category of a wave but the first category of margins 2, 3, ... -#}
cal_params as (

    select
        wave,
        margin,
        category,
        row_number() over (partition by wave order by margin, category) as k
    from (
        select distinct
            wave,
            margin,
            category,
            min(category) over (partition by wave, margin) as first_category
        from cal_cell_categories
    ) as cats
    where margin = 1 or category <> first_category

),

cal_x as (

    select
        cc.wave,
        {% for d in dims -%}
        cc.{{ d }},
        {% endfor -%}
        p.k
    from cal_cell_categories as cc
    inner join cal_params as p
        on cc.wave = p.wave
        and cc.margin = p.margin
        and cc.category = p.category

),

{#- A = sum_c D_c x_c x_c', dense (p x p per wave, zeros included) with [A | I] for Gauss-Jordan -#}
cal_a as (

    select
        xa.wave,
        xa.k as i,
        xb.k as j,
        {% call surveysynth.dagg() %}c.d_sum{% endcall %} as v
    from cal_x as xa
    inner join cal_x as xb
        on xa.wave = xb.wave
        {% for d in dims -%}
        and xa.{{ d }} = xb.{{ d }}
        {% endfor %}
    inner join cal_cells as c
        on xa.wave = c.wave
        {% for d in dims -%}
        and xa.{{ d }} = c.{{ d }}
        {% endfor %}
    group by xa.wave, xa.k, xb.k

),

cal_k as (

    select distinct wave, k from cal_params

),

cal_gj_0 as (

    select
        ki.wave,
        ki.k as i,
        kj.k as j,
        coalesce(a.v, 0e0) as v,
        coalesce(d.v, 0e0) as d0
    from cal_k as ki
    inner join cal_k as kj
        on ki.wave = kj.wave
    left join cal_a as a
        on a.wave = ki.wave
        and a.i = ki.k
        and a.j = kj.k
    left join cal_a as d
        on d.wave = ki.wave
        and d.i = ki.k
        and d.j = ki.k
    union all
    select
        ki.wave,
        ki.k as i,
        {{ P }} + kj.k as j,
        case when ki.k = kj.k then 1e0 else 0e0 end as v,
        coalesce(d.v, 0e0) as d0
    from cal_k as ki
    inner join cal_k as kj
        on ki.wave = kj.wave
    left join cal_a as d
        on d.wave = ki.wave
        and d.i = ki.k
        and d.j = ki.k

),

{#- Gauss-Jordan, one pivot per step (A is symmetric positive definite: no row exchanges); a pivot
    that elimination has left at (numerically) zero against its original diagonal d0, an aliased
    parameter, is skipped. Each step reads the one before once (the pivot, the pivot row and the
    pivot column by window functions), so engines that inline CTEs do not grow the plan
    exponentially. -#}
{% for s in range(1, P + 1) -%}
cal_gj_{{ s }} as (

    select
        wave,
        i,
        j,
        d0,
        case
            when piv is null or abs(piv) <= 1e-10 * piv_d0 then v
            when i = {{ s }} then v / piv
            else v - coalesce(col, 0e0) * coalesce(prow, 0e0) / piv
        end as v
    from (
        select
            g.*,
            max(case when g.i = {{ s }} and g.j = {{ s }} then g.v end) over (partition by g.wave) as piv,
            max(case when g.i = {{ s }} then g.d0 end) over (partition by g.wave) as piv_d0,
            max(case when g.j = {{ s }} then g.v end) over (partition by g.wave, g.i) as col,
            max(case when g.i = {{ s }} then g.v end) over (partition by g.wave, g.j) as prow
        from cal_gj_{{ s - 1 }} as g
    ) as w

),

{% endfor -%}

cal_ainv as (

    select wave, i, j - {{ P }} as j, v
    from cal_gj_{{ P }}
    where j > {{ P }}

),

{#- per stratum: coef_h, n_h and s_h = sum_{c in h} W_ch x_c -#}
cal_strata as (

    select
        s.wave,
        s.stratum_id,
        s.n_respondents as n_h,
        s.fpc * case when s.n_respondents >= 2 then cast(s.n_respondents as {{ dbl }}) / (s.n_respondents - 1) else 1e0 end as coef
    from {{ strata_rel }} as s

),

cal_s as (

    select
        cs.wave,
        cs.stratum_id,
        x.k,
        {% call surveysynth.dagg() %}cs.w_sum{% endcall %} as s
    from cal_cell_strata as cs
    inner join cal_x as x
        on cs.wave = x.wave
        {% for d in dims -%}
        and cs.{{ d }} = x.{{ d }}
        {% endfor %}
    group by cs.wave, cs.stratum_id, x.k

),

{#- M = sum_h coef_h [sum_{c in h} WW_ch x_c x_c' - s_h s_h' / n_h (n_h >= 2)] -#}
cal_m as (

    select wave, i, j, {% call surveysynth.dagg() %}v{% endcall %} as v
    from (
        select
            cs.wave,
            xa.k as i,
            xb.k as j,
            st.coef * cs.ww_sum as v
        from cal_cell_strata as cs
        inner join cal_strata as st
            on cs.wave = st.wave
            and cs.stratum_id = st.stratum_id
        inner join cal_x as xa
            on cs.wave = xa.wave
            {% for d in dims -%}
            and cs.{{ d }} = xa.{{ d }}
            {% endfor %}
        inner join cal_x as xb
            on cs.wave = xb.wave
            {% for d in dims -%}
            and cs.{{ d }} = xb.{{ d }}
            {% endfor %}
        union all
        select
            sa.wave,
            sa.k as i,
            sb.k as j,
            -st.coef * sa.s * sb.s / st.n_h as v
        from cal_s as sa
        inner join cal_s as sb
            on sa.wave = sb.wave
            and sa.stratum_id = sb.stratum_id
        inner join cal_strata as st
            on sa.wave = st.wave
            and sa.stratum_id = st.stratum_id
        where st.n_h >= 2
    ) as terms
    group by wave, i, j

),

{#- K = A^-1 M A^-1 -#}
cal_ma as (

    select m.wave, m.i, a.j, {% call surveysynth.dagg() %}m.v * a.v{% endcall %} as v
    from cal_m as m
    inner join cal_ainv as a
        on m.wave = a.wave
        and m.j = a.i
    group by m.wave, m.i, a.j

),

cal_kk as (

    select a.wave, a.i, ma.j, {% call surveysynth.dagg() %}a.v * ma.v{% endcall %} as v
    from cal_ainv as a
    inner join cal_ma as ma
        on a.wave = ma.wave
        and a.j = ma.i
    group by a.wave, a.i, ma.j

),
{% endmacro %}


{#- CTEs of one domain level (each ends with a comma), from zrows_<L>: one row per domain x
    indicator x measure x cell x stratum with zp = sum z and wz = sum w z over the cell and stratum.
    Output cal_corr_<L>: per domain x indicator x measure, `correction` = r'Kr - 2 cross. -#}
{% macro calibrated_variance_level_ctes(L, D, dims) %}
    {%- set key = ['wave'] + D + ['indicator', 'measure'] -%}
    {%- set is_cell = (dims | reject('in', D) | list | length) == 0 -%}
{#- Z_c per domain x cell; in a cell domain only totals (a Hajek mean, share or ratio of a cell has
    Z_c = 0: its correction is 0, the fixed-weight form is exact) -#}
cal_zc_{{ L }} as (

    select
        {{ key | join(', ') }},
        {% for d in dims if d not in D -%}
        {{ d }},
        {% endfor -%}
        {% call surveysynth.dagg() %}zp{% endcall %} as zc
    from zrows_{{ L }}
    {% if is_cell %}where measure = 'total'{% endif %}
    group by {{ key | join(', ') }}{% for d in dims if d not in D %}, {{ d }}{% endfor %}

),

cal_r_{{ L }} as (

    select
        {% for c in key -%}
        zc.{{ c }},
        {% endfor -%}
        x.k,
        {% call surveysynth.dagg() %}zc.zc / c.g{% endcall %} as r
    from cal_zc_{{ L }} as zc
    inner join cal_cells as c
        on zc.wave = c.wave
        {% for d in dims -%}
        and zc.{{ d }} = c.{{ d }}
        {% endfor %}
    inner join cal_x as x
        on zc.wave = x.wave
        {% for d in dims -%}
        and zc.{{ d }} = x.{{ d }}
        {% endfor %}
    group by {% for c in key %}zc.{{ c }}, {% endfor %}x.k

),

{#- the parameters beta is needed at: the categories of the cells in the strata the domain touches
    (f_c of its cells and s_h' beta need no others) -#}
cal_need_{{ L }} as (

    select distinct
        {% for c in key -%}
        t.{{ c }},
        {% endfor -%}
        s.k
    from (
        select distinct {{ key | join(', ') }}, stratum_id
        from zrows_{{ L }}
        {% if is_cell %}where measure = 'total'{% endif %}
    ) as t
    inner join cal_s as s
        on t.wave = s.wave
        and t.stratum_id = s.stratum_id

),

cal_beta_{{ L }} as (

    select
        {% for c in key -%}
        n.{{ c }},
        {% endfor -%}
        n.k,
        {% call surveysynth.dagg() %}a.v * r.r{% endcall %} as beta
    from cal_need_{{ L }} as n
    inner join cal_ainv as a
        on n.wave = a.wave
        and n.k = a.i
    inner join cal_r_{{ L }} as r
        on {% for c in key %}n.{{ c }} = r.{{ c }} and {% endfor %}a.j = r.k
    group by {% for c in key %}n.{{ c }}, {% endfor %}n.k

),

cal_quad_{{ L }} as (

    select
        {% for c in key -%}
        ra.{{ c }},
        {% endfor -%}
        {% call surveysynth.dagg() %}ra.r * kk.v * rb.r{% endcall %} as quad
    from cal_r_{{ L }} as ra
    inner join cal_kk as kk
        on ra.wave = kk.wave
        and ra.k = kk.i
    inner join cal_r_{{ L }} as rb
        on kk.wave = rb.wave
        and kk.j = rb.k
        {% for c in key if c != 'wave' -%}
        and ra.{{ c }} = rb.{{ c }}
        {% endfor %}
    group by {% for c in key %}ra.{{ c }}{{ ', ' if not loop.last }}{% endfor %}

),

{#- f_c of the domain's cells, and per touched stratum: sum f_c wz, Z_h and s_h' beta -#}
cal_f_{{ L }} as (

    select
        {% for c in key -%}
        b.{{ c }},
        {% endfor -%}
        {% for d in dims if d not in D -%}
        x.{{ d }},
        {% endfor -%}
        {% call surveysynth.dagg() %}b.beta{% endcall %} as f
    from cal_beta_{{ L }} as b
    inner join cal_x as x
        on b.wave = x.wave
        and b.k = x.k
        {% for d in D -%}
        and b.{{ d }} = x.{{ d }}
        {% endfor %}
    group by {% for c in key %}b.{{ c }}, {% endfor %}{% for d in dims if d not in D %}x.{{ d }}{{ ', ' if not loop.last }}{% endfor %}{% if dims | reject('in', D) | list | length == 0 %}1{% endif %}

),

cal_touched_{{ L }} as (

    select
        {% for c in key -%}
        z.{{ c }},
        {% endfor -%}
        z.stratum_id,
        {% call surveysynth.dagg() %}z.zp{% endcall %} as zh,
        {% call surveysynth.dagg() %}coalesce(f.f, 0e0) * z.wz{% endcall %} as fwz
    from zrows_{{ L }} as z
    left join cal_f_{{ L }} as f
        on {% for c in key + (dims | reject('in', D) | list) %}z.{{ c }} = f.{{ c }}{{ ' and ' if not loop.last }}{% endfor %}
    group by {% for c in key %}z.{{ c }}, {% endfor %}z.stratum_id

),

cal_sbeta_{{ L }} as (

    select
        {% for c in key -%}
        t.{{ c }},
        {% endfor -%}
        t.stratum_id,
        {% call surveysynth.dagg() %}s.s * b.beta{% endcall %} as sb
    from cal_touched_{{ L }} as t
    inner join cal_s as s
        on t.wave = s.wave
        and t.stratum_id = s.stratum_id
    inner join cal_beta_{{ L }} as b
        on {% for c in key %}t.{{ c }} = b.{{ c }} and {% endfor %}s.k = b.k
    group by {% for c in key %}t.{{ c }}, {% endfor %}t.stratum_id

),

cal_corr_{{ L }} as (

    select
        {% for c in key -%}
        t.{{ c }},
        {% endfor -%}
        coalesce(max(q.quad), 0e0) - 2e0 * {% call surveysynth.dagg() %}
            st.coef * (t.fwz - case when st.n_h >= 2 then t.zh * coalesce(sb.sb, 0e0) / st.n_h else 0e0 end)
        {% endcall %} as correction
    from cal_touched_{{ L }} as t
    inner join cal_strata as st
        on t.wave = st.wave
        and t.stratum_id = st.stratum_id
    left join cal_sbeta_{{ L }} as sb
        on {% for c in key %}t.{{ c }} = sb.{{ c }} and {% endfor %}t.stratum_id = sb.stratum_id
    left join cal_quad_{{ L }} as q
        on {% for c in key %}t.{{ c }} = q.{{ c }}{{ ' and ' if not loop.last }}{% endfor %}
    group by {% for c in key %}t.{{ c }}{{ ', ' if not loop.last }}{% endfor %}

),
{% endmacro %}
