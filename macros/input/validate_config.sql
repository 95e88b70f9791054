{#- Stop the run, naming the var and the fix, when the input contract is malformed.
    Runs at parse time, so a bad var fails `dbt build` before anything is built. -#}
{% macro validate_config() %}
    {%- do surveysynth.require_contract() -%}
    {%- set errors = [] -%}
    {%- set allowed_types = ['continuous', 'count', 'binary', 'categorical', 'ordinal'] -%}

    {%- for v in ['ss_unit_id', 'ss_wave'] -%}
        {%- set val = var(v, none) -%}
        {%- if val is none or val is not string or val | trim == '' -%}
            {%- do errors.append("var '" ~ v ~ "' must name a column of ss_responses (got " ~ val ~ ")") -%}
        {%- endif -%}
    {%- endfor -%}

    {%- set dims = var('ss_cell_dims', none) -%}
    {%- if dims is none or dims is string or dims is mapping or dims | length == 0 -%}
        {%- do errors.append("var 'ss_cell_dims' must be a non-empty list of column names, e.g. [region, size_band] (got " ~ dims ~ ")") -%}
    {%- else -%}
        {%- for d in dims -%}
            {%- if d is not string -%}
                {%- do errors.append("var 'ss_cell_dims': every entry must be a column name, got " ~ d) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}

    {%- set weight = var('ss_design_weight', none) -%}
    {%- if weight is not none and weight is not string -%}
        {%- do errors.append("var 'ss_design_weight' must be a column name or null (got " ~ weight ~ ")") -%}
    {%- endif -%}

    {%- set outs = var('ss_outcomes', none) -%}
    {%- if outs is none or outs is not mapping or outs | length == 0 -%}
        {%- do errors.append("var 'ss_outcomes' must map each outcome column to {type: ...}, e.g. {turnover: {type: continuous, min: 0}} (got " ~ outs ~ ")") -%}
    {%- else -%}
        {%- for name, spec in outs.items() -%}
            {%- if spec is not mapping or spec.get('type') not in allowed_types -%}
                {%- do errors.append("var 'ss_outcomes'." ~ name ~ ": type must be one of " ~ allowed_types | join(', ') ~ " (got " ~ spec ~ ")") -%}
            {%- elif spec.type in ('categorical', 'ordinal') -%}
                {%- set lv = spec.get('levels') -%}
                {%- if lv is none or lv is string or lv is mapping or lv | length < 2 -%}
                    {%- do errors.append("var 'ss_outcomes'." ~ name ~ ": a " ~ spec.type ~ " outcome needs 'levels', a list of at least two values") -%}
                {%- elif lv | map('string') | unique | list | length < lv | length -%}
                    {%- do errors.append("var 'ss_outcomes'." ~ name ~ ": 'levels' lists a value twice (" ~ lv | join(', ') ~ ")") -%}
                {%- else -%}
                    {%- for x in lv if x is none or x is mapping or (x is iterable and x is not string) -%}
                        {%- do errors.append("var 'ss_outcomes'." ~ name ~ ": every level must be a text or a number (got " ~ x ~ ")") -%}
                    {%- endfor -%}
                {%- endif -%}
            {%- elif spec.type in ('continuous', 'count') -%}
                {%- set lo = spec.get('min') -%}{%- set hi = spec.get('max') -%}
                {%- if (lo is not none and lo is not number) or (hi is not none and hi is not number) -%}
                    {%- do errors.append("var 'ss_outcomes'." ~ name ~ ": min and max must be numbers") -%}
                {%- elif lo is not none and hi is not none and lo > hi -%}
                    {%- do errors.append("var 'ss_outcomes'." ~ name ~ ": min (" ~ lo ~ ") is above max (" ~ hi ~ ")") -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}

    {%- set frame = var('ss_frame', none) -%}
    {%- set totals = var('ss_population_totals', none) -%}
    {%- if frame is none and totals is none -%}
        {%- do errors.append("set var 'ss_frame' (a unit-level population frame) or var 'ss_population_totals' (population counts per cell)") -%}
    {%- endif -%}
    {%- set aux = var('ss_frame_auxiliaries', []) -%}
    {%- if aux is not none and (aux is string or aux is mapping) -%}
        {%- do errors.append("var 'ss_frame_auxiliaries' must be a list of frame columns (got " ~ aux ~ ")") -%}
    {%- elif aux and frame is none -%}
        {%- do errors.append("var 'ss_frame_auxiliaries' needs a unit frame: set 'ss_frame' or empty the list") -%}
    {%- endif -%}

    {%- do errors.extend(surveysynth.column_name_errors()) -%}

    {%- set max_abs = var('ss_max_abs_value', 1.0e15) -%}
    {%- if max_abs is not number or max_abs <= 0 or max_abs > 1.0e18 -%}
        {%- do errors.append("var 'ss_max_abs_value' must be a number in (0, 1e18] (got " ~ max_abs ~ ")") -%}
    {%- endif -%}
    {%- set enc = var('ss_csv_encoding', 'utf-8') -%}
    {%- if enc is not string or (enc | lower) not in ('utf-8', 'utf8', 'latin-1', 'utf-16') -%}
        {%- do errors.append("var 'ss_csv_encoding' must be one of utf-8, latin-1, utf-16 (got " ~ enc ~ ")") -%}
    {%- endif -%}

    {%- for v, lo, hi in [('ss_max_quarantine_share', 0, 1), ('ss_sparse_below_n', 1, none), ('ss_sparse_below_neff', 0, none)] -%}
        {%- set val = var(v, none) -%}
        {%- if val is not number or val < lo or (hi is not none and val > hi) -%}
            {%- do errors.append("var '" ~ v ~ "' must be a number" ~ (" in [" ~ lo ~ ", " ~ hi ~ "]" if hi is not none else " >= " ~ lo) ~ " (got " ~ val ~ ")") -%}
        {%- endif -%}
    {%- endfor -%}

    {%- if errors -%}
        {{ exceptions.raise_compiler_error("surveysynth input contract is malformed:\n  - " ~ errors | join("\n  - ")) }}
    {%- endif -%}
{% endmacro %}

{#- Column names: each column plays one role (no name twice among ids, wave, weight, cell dimensions,
    outcomes and auxiliaries, compared case-insensitively as the engines do), names are non-empty
    text, and none takes a name the models give their own columns. -#}
{% macro column_name_errors() %}
    {%- set errors = [] -%}
    {%- set internal = ['unit_id', 'wave', 'cell_id', 'design_weight', 'analysis_weight', 'support_class',
                        'implicate', 'is_synthetic', 'synth_weight', 'n_population', '_row_id'] -%}
    {%- set roles = [] -%}
    {%- for v in ['ss_unit_id', 'ss_wave', 'ss_design_weight'] -%}
        {%- if var(v, none) is string %}{% do roles.append((var(v), v)) %}{% endif -%}
    {%- endfor -%}
    {%- set named = [] -%}
    {%- set dims = var('ss_cell_dims', none) -%}
    {%- if dims is iterable and dims is not string and dims is not mapping -%}
        {%- for d in dims %}{% do named.append((d, 'ss_cell_dims')) %}{% endfor -%}
    {%- endif -%}
    {%- set outs = var('ss_outcomes', none) -%}
    {%- if outs is mapping -%}
        {%- for o in outs %}{% do named.append((o, 'ss_outcomes')) %}{% endfor -%}
    {%- endif -%}
    {%- set aux = var('ss_frame_auxiliaries', []) -%}
    {%- if aux is iterable and aux is not string and aux is not mapping -%}
        {%- for a in aux %}{% do named.append((a, 'ss_frame_auxiliaries')) %}{% endfor -%}
    {%- endif -%}
    {%- set seen = {} -%}
    {%- for name, v in roles + named -%}
        {%- if name is not string or name | trim == '' -%}
            {%- do errors.append("var '" ~ v ~ "': a column name must be non-empty text (got '" ~ name ~ "')") -%}
        {%- elif (name | lower) in seen -%}
            {%- do errors.append("column '" ~ name ~ "' is named twice, by var '" ~ seen[name | lower] ~ "' and by var '" ~ v
                ~ "': each column plays one role") -%}
        {%- else -%}
            {%- do seen.update({name | lower: v}) -%}
            {%- if (name | lower) in internal and v not in ('ss_unit_id', 'ss_wave', 'ss_design_weight') -%}
                {%- do errors.append("var '" ~ v ~ "': column name '" ~ name ~ "' is one the models use for their own columns ("
                    ~ internal | join(', ') ~ "); rename the column in the input") -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(errors) }}
{% endmacro %}
