{#- Accessors and validation for the disclosure-control vars (models/disclosure), so a malformed var
    stops the run at compile time, naming the var and the fix. -#}

{#- The protected magnitude tables (var ss_sdc_tables): [{name, value, rows, cols}], each the weighted
    total of outcome `value` by two cell dimensions, per wave, with both margins. -#}
{% macro sdc_tables() %}
    {%- set raw = var('ss_sdc_tables', []) or [] -%}
    {%- set dims = surveysynth.cell_dims() -%}
    {%- set outs = surveysynth.outcomes() -%}
    {%- set names = [] -%}
    {%- for t in raw -%}
        {%- if t is not mapping or t.get('name') is none or t.get('value') is none
            or t.get('rows') is none or t.get('cols') is none -%}
            {{ exceptions.raise_compiler_error(
                "ss_sdc_tables: every entry needs name, value, rows and cols, e.g. "
                ~ "{name: turnover_by_region_sector, value: turnover, rows: region, cols: sector}; got " ~ t) }}
        {%- endif -%}
        {%- if t.name in names -%}
            {{ exceptions.raise_compiler_error("ss_sdc_tables: table name '" ~ t.name ~ "' is used twice") }}
        {%- endif -%}
        {%- do names.append(t.name) -%}
        {%- for side in ['rows', 'cols'] -%}
            {%- if surveysynth.ident(t[side]) not in dims -%}
                {{ exceptions.raise_compiler_error(
                    "ss_sdc_tables '" ~ t.name ~ "': " ~ side ~ " = '" ~ t[side] ~ "' is not a cell dimension "
                    ~ "(ss_cell_dims = " ~ surveysynth.cell_dim_names() ~ ")") }}
            {%- endif -%}
        {%- endfor -%}
        {%- if t.rows == t.cols -%}
            {{ exceptions.raise_compiler_error("ss_sdc_tables '" ~ t.name ~ "': rows and cols must differ") }}
        {%- endif -%}
        {%- set spec = outs.get(surveysynth.ident(t.value)) -%}
        {%- if spec is none or spec.type not in ('continuous', 'count') -%}
            {{ exceptions.raise_compiler_error(
                "ss_sdc_tables '" ~ t.name ~ "': value = '" ~ t.value ~ "' must be a continuous or count "
                ~ "outcome of ss_outcomes (a magnitude); the dominance rules need contributions") }}
        {%- endif -%}
        {%- set lo = spec.get('min') -%}
        {%- if (lo is not none and lo < 0) or (lo is none and spec.type != 'count') -%}
            {{ exceptions.raise_compiler_error(
                "ss_sdc_tables '" ~ t.name ~ "': outcome '" ~ t.value ~ "' needs min >= 0 in ss_outcomes: "
                ~ "dominance and p% rules assume non-negative contributions") }}
        {%- endif -%}
    {%- endfor -%}
    {#- column names as SQL identifiers (surveysynth.ident), the table name as given -#}
    {%- set out = [] -%}
    {%- for t in raw -%}
        {%- do out.append({'name': t.name, 'value': surveysynth.ident(t.value),
                           'rows': surveysynth.ident(t.rows), 'cols': surveysynth.ident(t.cols)}) -%}
    {%- endfor -%}
    {{ return(out) }}
{% endmacro %}

{#- The primary rules' parameters (threshold, (n, k) dominance, p%), validated. -#}
{% macro sdc_rules() %}
    {%- set r = {
        'k': var('ss_sdc_min_respondents', 3),
        'dom_n': var('ss_sdc_dominance_n', 2),
        'dom_k': var('ss_sdc_dominance_k', 85),
        'p': var('ss_sdc_p', 10),
        'share': var('ss_sdc_threshold_protection_share', 0.10),
        'weighted': var('ss_sdc_weighted', true),
    } -%}
    {%- if r.k is not number or r.k < 1 -%}
        {{ exceptions.raise_compiler_error("ss_sdc_min_respondents must be a number >= 1, got " ~ r.k) }}
    {%- endif -%}
    {%- if r.dom_n is not number or r.dom_n < 1 -%}
        {{ exceptions.raise_compiler_error("ss_sdc_dominance_n must be an integer >= 1, got " ~ r.dom_n) }}
    {%- endif -%}
    {%- if r.dom_k is not number or r.dom_k <= 0 or r.dom_k > 100 -%}
        {{ exceptions.raise_compiler_error("ss_sdc_dominance_k must be a percentage in (0, 100], got " ~ r.dom_k) }}
    {%- endif -%}
    {%- if r.p is not number or r.p < 0 -%}
        {{ exceptions.raise_compiler_error("ss_sdc_p must be a percentage >= 0, got " ~ r.p) }}
    {%- endif -%}
    {%- if r.share is not number or r.share < 0 -%}
        {{ exceptions.raise_compiler_error("ss_sdc_threshold_protection_share must be >= 0, got " ~ r.share) }}
    {%- endif -%}
    {{ return(r) }}
{% endmacro %}

{#- The label of row / column totals in protected tables. -#}
{% macro sdc_total_label() %}
    {{ return('Total') }}
{% endmacro %}

{#- The disclosure-risk holdout share (var ss_risk_holdout_share), validated: in (0, 1). -#}
{% macro risk_holdout_share() %}
    {%- set s = var('ss_risk_holdout_share', 0.2) -%}
    {%- if s is not number or s <= 0 or s >= 1 -%}
        {{ exceptions.raise_compiler_error(
            "ss_risk_holdout_share must be a share in (0, 1), got " ~ s ~ ": the disclosure-risk gate "
            ~ "compares the synthetic records with real respondents the synthesizer never saw") }}
    {%- endif -%}
    {{ return(s) }}
{% endmacro %}
