{#- Stop the build before anything runs when the input contract is not set (a bare install of the
    package describes no survey), with one message listing every var still to set. Called while the
    project is parsed, by validate_config and by the contract accessors, so whichever model is read
    first gives this message rather than a file-not-found or a template error. -#}
{% macro require_contract() %}
    {%- set missing = surveysynth.missing_contract_vars() -%}
    {%- if missing -%}
        {{ exceptions.raise_compiler_error(
            "surveysynth: the input contract is not set. Set these vars under `vars: surveysynth:` in "
            ~ "your dbt_project.yml (or with dbt build --vars):\n  - " ~ missing | join("\n  - ")
            ~ "\nSee the README's dbt quick start; the demo's values are in demo/demo_vars.yml.") }}
    {%- endif -%}
{% endmacro %}

{#- The contract vars still unset, each with what it takes. -#}
{% macro missing_contract_vars() %}
    {%- set missing = [] -%}
    {%- set needed = [
        ('ss_responses', "the responses: 'file:<path>', 'ref:<model>', 'source:<source>.<table>' or '<schema>.<table>'"),
        ('ss_unit_id', 'the unit id column of ss_responses'),
        ('ss_wave', 'the wave (period) column of ss_responses'),
        ('ss_cell_dims', 'a list of the cell dimension columns, e.g. [region, size_band]'),
        ('ss_outcomes', 'the outcome columns, e.g. {turnover: {type: continuous, min: 0}}')] -%}
    {%- for name, what in needed -%}
        {%- set val = var(name, none) -%}
        {%- if val is none or (val is string and val | trim == '') or (val is not string and val is not number and val | length == 0) -%}
            {%- do missing.append(name ~ ': ' ~ what) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set frame = var('ss_frame', none) -%}
    {%- if frame is none and var('ss_population_totals', none) is none -%}
        {%- do missing.append("ss_frame: set var 'ss_frame' (a unit-level population frame, with ss_frame_unit_id) "
            ~ "or var 'ss_population_totals' (population counts per cell)") -%}
    {%- elif frame is not none and var('ss_frame_unit_id', none) is none -%}
        {%- do missing.append('ss_frame_unit_id: the unit id column of ss_frame') -%}
    {%- endif -%}
    {{ return(missing) }}
{% endmacro %}
