{#- The margins the implicates of augmented_microdata are raked to: the project's calibration margins
    (calibration_specs: counts, then known totals) with the `completion` count margin added last, over
    the column completion_group (each completed cell x wave, and '(observed)' for the rest). -#}
{% macro augmented_margin_specs() %}
    {%- set specs = surveysynth.calibration_specs() -%}
    {%- set counts = [] -%}
    {%- for c in specs.counts %}{% do counts.append(c) %}{% endfor -%}
    {%- do counts.append({'id': 'completion', 'dims': ['completion_group'], 'kind': 'count'}) -%}
    {{ return({'counts': counts, 'totals': specs.totals}) }}
{% endmacro %}
