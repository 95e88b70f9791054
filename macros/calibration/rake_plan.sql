{#- Resolve the arguments of rake / rake_factors / rake_apply into one plan: the columns of the
    small cell table the sweeps run on, and the settings. Shared so the three never disagree.

    The cell table has one row per group (wave, ...) x cell, where a cell is one combination of the
    dimensions the margins use (or one value of `cell_key`, a unit column that determines them).
    Its weights follow w_i = d_i * (alpha_c + sum_a beta_ca * x_ia): g is alpha_c alone when only
    count margins are used, and linear in the auxiliaries x_a when known totals are. Every margin
    sum is then a function of per-cell moments (sum d, sum d x_a, sum d x_a x_b), so the sweeps
    never touch the units. -#}
{% macro _rake_plan(units, weight, margins, margin_specs=none, group_by=none, margin_group_by=none,
                    cell_key=none, tol=none, max_iter=none, bounds=none, method=none, cells=none) %}
    {%- set specs = margin_specs if margin_specs is not none else surveysynth.calibration_specs() -%}
    {%- set settings = surveysynth.rake_settings() -%}
    {%- set group_by = group_by if group_by is not none else ['wave'] -%}
    {%- set margin_group_by = margin_group_by if margin_group_by is not none else group_by -%}
    {%- if bounds is none -%}
        {%- set lower = settings.lower -%}{%- set upper = settings.upper -%}
    {%- else -%}
        {%- set lower = 0.0 if bounds[0] is none else bounds[0] -%}{%- set upper = bounds[1] -%}
    {%- endif -%}
    {%- set uncovered = var('ss_calibration_uncovered', 'collapse') -%}
    {%- if uncovered not in ('collapse', 'fail') -%}
        {{ exceptions.raise_compiler_error("var 'ss_calibration_uncovered' must be 'collapse' or 'fail', got '" ~ uncovered ~ "'") }}
    {%- endif -%}
    {%- set fallback = var('ss_rake_fallback', 'first_margin') -%}
    {%- if fallback not in ('first_margin', 'none') -%}
        {{ exceptions.raise_compiler_error("var 'ss_rake_fallback' must be 'first_margin' or 'none', got '" ~ fallback ~ "'") }}
    {%- endif -%}
    {%- if cells is not none and not cell_key -%}
        {{ exceptions.raise_compiler_error("surveysynth.rake: `cells` (a cell_key -> dimensions lookup) needs `cell_key`") }}
    {%- endif -%}
    {%- if specs.counts | length == 0 -%}
        {{ exceptions.raise_compiler_error("surveysynth.rake: no count margin to calibrate to (margin_specs.counts is empty)") }}
    {%- endif -%}

    {#- dimensions used by any margin, in first-use order -#}
    {%- set dims = [] -%}
    {%- for m in specs.counts + specs.totals -%}
        {%- for d in m.dims -%}{%- if d not in dims -%}{%- do dims.append(d) -%}{%- endif -%}{%- endfor -%}
    {%- endfor -%}
    {%- set keys = [cell_key] if cell_key else dims -%}
    {%- set carried = [] -%}
    {%- if cell_key -%}{%- for d in dims %}{% do carried.append(d) %}{% endfor -%}{%- endif -%}

    {#- auxiliaries: aux[k] = variable of index k+1 -#}
    {%- set aux = [] -%}
    {%- for t in specs.totals -%}{%- if t.variable not in aux -%}{%- do aux.append(t.variable) -%}{%- endif -%}{%- endfor -%}
    {%- set count_index = {} -%}
    {%- for m in specs.counts %}{% do count_index.update({m.id: loop.index}) %}{% endfor -%}
    {%- set totals = [] -%}
    {%- for t in specs.totals -%}
        {%- if t.count_id not in count_index -%}
            {{ exceptions.raise_compiler_error("surveysynth.rake: total '" ~ t.id ~ "' needs the count margin '" ~ t.count_id ~ "' in margin_specs.counts") }}
        {%- endif -%}
        {%- do totals.append({'id': t.id, 'dims': t.dims, 'variable': t.variable,
                              'a': aux.index(t.variable) + 1, 'ci': count_index[t.count_id], 'j': loop.index}) -%}
    {%- endfor -%}
    {%- set pairs = [] -%}
    {%- for a in range(1, aux | length + 1) -%}{%- for b in range(a, aux | length + 1) -%}{%- do pairs.append((a, b)) -%}{%- endfor -%}{%- endfor -%}

    {#- the columns that stay fixed through the sweeps -#}
    {%- set static = group_by + keys + carried -%}
    {%- for m in specs.counts %}{% do static.append('rk_cat_' ~ loop.index) %}{% do static.append('rk_t_' ~ loop.index) %}{% endfor -%}
    {%- for t in totals %}{% do static.append('rk_tx_' ~ t.j) %}{% endfor -%}
    {%- do static.append('rk_s0') -%}
    {%- for a in range(1, aux | length + 1) %}{% do static.append('rk_sx_' ~ a) %}{% do static.append('rk_mid_' ~ a) %}{% do static.append('rk_rad_' ~ a) %}{% endfor -%}
    {%- for a, b in pairs %}{% do static.append('rk_sxx_' ~ a ~ '_' ~ b) %}{% endfor -%}
    {%- set state = ['rk_alpha'] -%}
    {%- for a in range(1, aux | length + 1) %}{% do state.append('rk_beta_' ~ a) %}{% endfor -%}

    {{ return({
        'units': units, 'weight': weight, 'margins': margins,
        'counts': specs.counts, 'totals': totals, 'aux': aux, 'pairs': pairs,
        'group_by': group_by, 'margin_group_by': margin_group_by,
        'cell_key': cell_key, 'key_cols': keys, 'dims': dims, 'carried': carried, 'cells': cells,
        'static': static, 'state': state, 'carry': static + ['rk_sweep', 'rk_live'],
        'tol': settings.tol if tol is none else tol,
        'max_iter': (settings.max_iter if max_iter is none else max_iter) | int,
        'lower': lower, 'upper': upper, 'uncovered': uncovered, 'fallback': fallback,
        'method': settings.method if method is none else method,
    }) }}
{% endmacro %}

{#- SQL for sum_i w_i over a cell, from the cell's moments and state. -#}
{% macro _rake_w(plan, p='') %}
    {%- set parts = [p ~ 'rk_alpha * ' ~ p ~ 'rk_s0'] -%}
    {%- for a in range(1, plan.aux | length + 1) %}{% do parts.append(p ~ 'rk_beta_' ~ a ~ ' * ' ~ p ~ 'rk_sx_' ~ a) %}{% endfor -%}
    {{ return('(' ~ parts | join(' + ') ~ ')') }}
{% endmacro %}

{#- SQL for sum_i w_i x_ia over a cell. -#}
{% macro _rake_wx(plan, a, p='') %}
    {%- set parts = [p ~ 'rk_alpha * ' ~ p ~ 'rk_sx_' ~ a] -%}
    {%- for b in range(1, plan.aux | length + 1) -%}
        {%- set lo = [a, b] | min -%}{%- set hi = [a, b] | max -%}
        {%- do parts.append(p ~ 'rk_beta_' ~ b ~ ' * ' ~ p ~ 'rk_sxx_' ~ lo ~ '_' ~ hi) -%}
    {%- endfor -%}
    {{ return('(' ~ parts | join(' + ') ~ ')') }}
{% endmacro %}

{#- Relative error of a weighted sum against its target (1 where there is no target). -#}
{% macro _rake_relerr(total, target) %}
    {{ return("case when " ~ target ~ " is null then 1.0"
        ~ " when " ~ target ~ " = 0 then case when abs(" ~ total ~ ") > 0 then 1.0 else 0.0 end"
        ~ " else abs(" ~ total ~ " - " ~ target ~ ") / abs(" ~ target ~ ") end") }}
{% endmacro %}
