{#- Accessors and validation for the design, calibration and estimation vars, so models never read
    raw vars directly and a malformed var stops the run at compile time, naming the var and the fix. -#}

{#- Strata: a subset of the cell dimensions (default: the cell dimensions, i.e. stratum = cell). -#}
{% macro design_strata() %}
    {%- set s = var('ss_design_strata', none) -%}
    {{ return(surveysynth.cell_dims() if s is none else surveysynth.idents(s)) }}
{% endmacro %}

{#- Variance strata: strata with fewer than two respondents in a wave are pooled per combination of
    these strata dimensions (ss_variance_collapse; [] or null = never pooled). -#}
{% macro variance_collapse() %}
    {%- set c = var('ss_variance_collapse', none) -%}
    {{ return([] if c is none else surveysynth.idents(c)) }}
{% endmacro %}

{% macro has_sample() %}
    {%- set s = var('ss_sample', none) -%}
    {{ return(s is not none and (s | string | trim) != '') }}
{% endmacro %}

{#- Nonresponse levels: [classes, collapse level 1, ...], each a list of columns; [] when unset. -#}
{% macro nonresponse_levels() %}
    {%- set classes = var('ss_nonresponse_classes', none) -%}
    {%- if classes is none -%}{{ return([]) }}{%- endif -%}
    {%- set levels = [surveysynth.idents(classes)] -%}
    {%- for lv in (var('ss_nonresponse_collapse', []) or []) %}{% do levels.append(surveysynth.idents(lv)) %}{% endfor -%}
    {{ return(levels) }}
{% endmacro %}

{#- A text key for one combination of `dims` (values joined with '|'), or 'all' for no dims. -#}
{% macro category_key_expr(dims, alias='') %}
    {%- if dims | length == 0 -%}
        {{ return("'all'") }}
    {%- endif -%}
    {%- set prefix = (alias ~ '.') if alias else '' -%}
    {%- set parts = [] -%}
    {%- for d in dims -%}
        {%- if not loop.first -%}{%- do parts.append("'|'") -%}{%- endif -%}
        {%- do parts.append(surveysynth.as_text(prefix ~ d)) -%}
    {%- endfor -%}
    {{ return(dbt.concat(parts) if parts | length > 1 else parts[0]) }}
{% endmacro %}

{#- The calibration constraints, resolved from vars:
      counts: [{id, dims, kind: 'count'}]  population-count margins, in raking order
      totals: [{id, dims, variable, count_id, kind: 'total'}]  known auxiliary totals
    Every auxiliary total also holds the count of its categories, so the count margin over its
    `by` dims is added to `counts` when not already listed (the margin table shows every target). -#}
{% macro calibration_specs() %}
    {%- set dims = surveysynth.cell_dims() -%}
    {%- set raw = var('ss_calibration_margins', none) -%}
    {%- set margin_lists = [] -%}
    {%- if raw is none -%}
        {%- for d in dims %}{% do margin_lists.append([d]) %}{% endfor -%}
    {%- else -%}
        {%- for m in raw %}{% do margin_lists.append(surveysynth.idents(m)) %}{% endfor -%}
    {%- endif -%}
    {%- set counts = [] -%}
    {%- set seen = [] -%}
    {%- for m in margin_lists -%}
        {%- set mid = surveysynth.names_label(m, ' x ') if m | length > 0 else 'total' -%}
        {%- if mid not in seen -%}
            {%- do seen.append(mid) -%}
            {%- do counts.append({'id': mid, 'dims': m, 'kind': 'count'}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set totals = [] -%}
    {%- for t in (var('ss_calibration_totals', []) or []) -%}
        {%- if t is string -%}
            {%- set v = surveysynth.ident(t) -%}
            {%- set by = margin_lists[0] if margin_lists | length > 0 else [] -%}
        {%- else -%}
            {%- set v = surveysynth.ident(t.get('variable')) -%}
            {%- set by = surveysynth.idents(t.get('by', []) or []) -%}
        {%- endif -%}
        {%- set cid = surveysynth.names_label(by, ' x ') if by | length > 0 else 'total' -%}
        {%- if cid not in seen -%}
            {%- do seen.append(cid) -%}
            {%- do counts.append({'id': cid, 'dims': by, 'kind': 'count'}) -%}
        {%- endif -%}
        {%- set tid = surveysynth.ident_name(v) ~ ((' by ' ~ surveysynth.names_label(by, ' x ')) if by | length > 0 else ' total') -%}
        {%- do totals.append({'id': tid, 'dims': by, 'variable': v, 'count_id': cid, 'kind': 'total'}) -%}
    {%- endfor -%}
    {{ return({'counts': counts, 'totals': totals}) }}
{% endmacro %}

{#- The rake settings from vars (tol, max_iter, bounds [L, U] with U none for no upper bound). -#}
{% macro rake_settings() %}
    {%- set b = var('ss_rake_bounds', none) -%}
    {%- set lower = 0.0 if b is none or b[0] is none else b[0] -%}
    {%- set upper = none if b is none else b[1] -%}
    {#- '1e-12' arrives as text from YAML 1.1 (--vars '{"ss_rake_tol": 1e-12}'): read it as a number -#}
    {%- set tol = var('ss_rake_tol', 1.0e-6) -%}
    {%- set tol = (tol | float) if tol is string else tol -%}
    {{ return({'tol': tol, 'max_iter': var('ss_rake_max_iter', 100),
               'lower': lower, 'upper': upper, 'method': var('ss_rake_method', 'auto')}) }}
{% endmacro %}

{#- Outcome -> auxiliary, both as identifiers. -#}
{% macro ratio_estimators() %}
    {%- set out = {} -%}
    {%- for y, x in (var('ss_ratio_estimators', {}) or {}).items() %}{% do out.update({surveysynth.ident(y): surveysynth.ident(x)}) %}{% endfor -%}
    {{ return(out) }}
{% endmacro %}

{#- Estimation domains: [{level, dims}] for cell, each cell dimension, every pair of cell dimensions
    (var ss_estimation_pairs, default true; level '<dim>_x_<dim>' in ss_cell_dims order), extra
    domains, national. A domain is listed once whatever the order of its dimensions. -#}
{% macro estimation_domains() %}
    {%- set dims = surveysynth.cell_dims() -%}
    {%- set out = [{'level': 'cell', 'dims': dims}] -%}
    {%- set seen = ['cell'] -%}
    {%- set seen_sets = [dims | sort | join('|')] -%}
    {%- set candidates = [] -%}
    {%- if dims | length > 1 -%}
        {%- for d in dims %}{% do candidates.append([d]) %}{% endfor -%}
    {%- endif -%}
    {%- if var('ss_estimation_pairs', true) -%}
        {%- for a in dims -%}{%- for b in dims[loop.index:] -%}{%- do candidates.append([a, b]) -%}{%- endfor -%}{%- endfor -%}
    {%- endif -%}
    {%- for extra in (var('ss_estimation_domains', none) or []) %}{% do candidates.append(surveysynth.idents(extra)) %}{% endfor -%}
    {%- for extra in candidates -%}
        {%- set lvl = surveysynth.names_label(extra, '_x_') -%}
        {%- set key = extra | sort | join('|') -%}
        {%- if lvl not in seen and key not in seen_sets and extra | length > 0 -%}
            {%- do out.append({'level': lvl, 'dims': extra}) -%}{%- do seen.append(lvl) -%}{%- do seen_sets.append(key) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do out.append({'level': 'national', 'dims': []}) -%}
    {{ return(out) }}
{% endmacro %}

{#- Runs when the model executes (not at parse time), so a build that does not select the design
    layer (e.g. staging only, with other outcomes) is not stopped by its vars. -#}
{% macro validate_design_config() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set errors = [] -%}
    {%- set dims = surveysynth.cell_dims() -%}
    {%- set aux = surveysynth.frame_auxiliaries() -%}


    {%- if var('ss_design_strata', none) is not none -%}
        {%- do surveysynth._check_dim_list(errors, 'ss_design_strata', var('ss_design_strata'), false) -%}
    {%- endif -%}

    {%- set vc = var('ss_variance_collapse', none) -%}
    {%- if vc is not none -%}
        {%- do surveysynth._check_dim_list(errors, 'ss_variance_collapse', vc, true) -%}
        {%- if vc is not string and vc is not mapping -%}
            {%- for d in vc if surveysynth.ident(d) not in surveysynth.design_strata() -%}
                {%- do errors.append("var 'ss_variance_collapse': '" ~ d ~ "' is not a strata dimension (ss_design_strata: " ~ surveysynth.design_strata() | join(', ') ~ "); variance strata pool strata, so their dimensions must be among the strata's") -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}

    {%- set classes = var('ss_nonresponse_classes', none) -%}
    {%- if classes is not none -%}
        {%- do surveysynth._check_dim_list(errors, 'ss_nonresponse_classes', classes, true) -%}
        {%- if not surveysynth.has_sample() -%}
            {%- do errors.append("var 'ss_nonresponse_classes' needs var 'ss_sample' (every sampled unit per wave with a responded flag): set it, or set ss_nonresponse_classes: null") -%}
        {%- endif -%}
        {%- set prev = classes -%}
        {%- for lv in (var('ss_nonresponse_collapse', []) or []) -%}
            {%- do surveysynth._check_dim_list(errors, 'ss_nonresponse_collapse', lv, true) -%}
            {%- if lv is not string and lv is not mapping and lv is not none -%}
                {%- for d in lv -%}
                    {%- if prev is not string and d not in prev -%}
                        {%- do errors.append("var 'ss_nonresponse_collapse': level " ~ lv ~ " must be a subset of the level before it (" ~ prev ~ "), so classes nest") -%}
                    {%- endif -%}
                {%- endfor -%}
                {%- set prev = lv -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}

    {%- set margins = var('ss_calibration_margins', none) -%}
    {%- if margins is not none -%}
        {%- if margins is string or margins is mapping or margins | length == 0 -%}
            {%- do errors.append("var 'ss_calibration_margins' must be a non-empty list of dimension lists, e.g. [[region], [sector, size_band]] (or null for one margin per cell dimension); got " ~ margins) -%}
        {%- else -%}
            {%- for m in margins %}{%- do surveysynth._check_dim_list(errors, 'ss_calibration_margins', m, true) -%}{% endfor -%}
        {%- endif -%}
    {%- endif -%}

    {%- set totals = var('ss_calibration_totals', []) or [] -%}
    {%- if totals is string or totals is mapping -%}
        {%- do errors.append("var 'ss_calibration_totals' must be a list (of auxiliary names or {variable, by} entries), got " ~ totals) -%}
    {%- else -%}
        {%- for t in totals -%}
            {%- set v = t if t is string else (t.get('variable') if t is mapping else none) -%}
            {%- if v is none or surveysynth.ident(v) not in aux -%}
                {%- do errors.append("var 'ss_calibration_totals': entry " ~ t ~ " must name a frame auxiliary (ss_frame_auxiliaries: " ~ aux | join(', ') ~ ")") -%}
            {%- endif -%}
            {%- if t is mapping -%}{%- do surveysynth._check_dim_list(errors, 'ss_calibration_totals (by)', t.get('by', []) or [], true) -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}

    {%- set b = var('ss_rake_bounds', none) -%}
    {%- if b is not none -%}
        {%- if b is string or b is mapping or b | length != 2 -%}
            {%- do errors.append("var 'ss_rake_bounds' must be [L, U] (U may be null) or null, got " ~ b) -%}
        {%- elif (b[0] is not none and (b[0] is not number or b[0] < 0 or b[0] > 1))
              or (b[1] is not none and (b[1] is not number or b[1] < 1)) -%}
            {%- do errors.append("var 'ss_rake_bounds' = " ~ b ~ ": need 0 <= L <= 1 <= U, so g = 1 is always allowed") -%}
        {%- endif -%}
    {%- endif -%}
    {%- set tol = var('ss_rake_tol', none) -%}
    {%- set tol = (tol | float) if tol is string else tol -%}
    {%- if tol is not number or tol <= 0 -%}
        {%- do errors.append("var 'ss_rake_tol' must be a positive number, got " ~ tol) -%}
    {%- endif -%}
    {%- set mi = var('ss_rake_max_iter', none) -%}
    {%- if mi is not number or mi < 1 or mi != (mi | int) -%}
        {%- do errors.append("var 'ss_rake_max_iter' must be a whole number >= 1, got " ~ mi) -%}
    {%- endif -%}
    {%- if var('ss_rake_method', 'auto') not in ['auto', 'recursive', 'unrolled', 'tables'] -%}
        {%- do errors.append("var 'ss_rake_method' must be auto, recursive, unrolled or tables, got " ~ var('ss_rake_method')) -%}
    {%- endif -%}

    {%- set ratios = var('ss_ratio_estimators', {}) or {} -%}
    {%- if ratios is not mapping -%}
        {%- do errors.append("var 'ss_ratio_estimators' must map outcomes to auxiliaries, e.g. {turnover: register_turnover}, or be {}; got " ~ ratios) -%}
    {%- else -%}
        {%- set outs = surveysynth.outcomes() -%}
        {%- for y, x in ratios.items() -%}
            {%- if surveysynth.ident(y) not in outs or outs[surveysynth.ident(y)].type not in ('continuous', 'count') -%}
                {%- do errors.append("var 'ss_ratio_estimators': '" ~ y ~ "' must be a continuous or count outcome of ss_outcomes (or set ss_ratio_estimators: {})") -%}
            {%- endif -%}
            {%- if surveysynth.ident(x) not in aux -%}
                {%- do errors.append("var 'ss_ratio_estimators': '" ~ x ~ "' (for " ~ y ~ ") must be a frame auxiliary (ss_frame_auxiliaries: " ~ aux | join(', ') ~ "), or set ss_ratio_estimators: {}") -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- for extra in (var('ss_estimation_domains', none) or []) %}{%- do surveysynth._check_dim_list(errors, 'ss_estimation_domains', extra, false) -%}{% endfor -%}
    {%- set good = var('ss_grade_cv_good', none) -%}{%- set caution = var('ss_grade_cv_caution', none) -%}
    {%- if good is not number or caution is not number or good <= 0 or caution < good -%}
        {%- do errors.append("vars 'ss_grade_cv_good' and 'ss_grade_cv_caution' must be numbers with 0 < good <= caution, got " ~ good ~ ", " ~ caution) -%}
    {%- endif -%}
    {%- set mn = var('ss_grade_min_n', none) -%}
    {%- if mn is not number or mn < 2 -%}
        {%- do errors.append("var 'ss_grade_min_n' must be a number >= 2, got " ~ mn) -%}
    {%- endif -%}

    {%- if errors -%}
        {{ exceptions.raise_compiler_error("surveysynth design/calibration/estimation vars are malformed:\n  - " ~ errors | join("\n  - ")) }}
    {%- endif -%}
{% endmacro %}

{#- Append an error to `errors` unless `value` is a list of cell dimensions. -#}
{% macro _check_dim_list(errors, v, value, allow_empty) %}
    {%- set dims = surveysynth.cell_dims() -%}
    {%- if value is string or value is mapping or value is number or value is none -%}
        {%- do errors.append("var '" ~ v ~ "' must be a list of cell dimensions (" ~ dims | join(', ') ~ "), got " ~ value) -%}
    {%- else -%}
        {%- if not allow_empty and value | length == 0 -%}
            {%- do errors.append("var '" ~ v ~ "' must not be empty") -%}
        {%- endif -%}
        {%- for d in value -%}
            {%- if surveysynth.ident(d) not in dims -%}
                {%- do errors.append("var '" ~ v ~ "': '" ~ d ~ "' is not a cell dimension (ss_cell_dims: " ~ dims | join(', ') ~ ")") -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
