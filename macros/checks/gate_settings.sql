{#- Settings shared by the statistical gates (see surveysynth.checks.status). -#}

{#- ss_gate_alpha, validated: the false-alarm rate of each statistical gate. -#}
{% macro gate_alpha() %}
    {%- set a = var('ss_gate_alpha', 0.01) -%}
    {%- if a is none or a is string or a <= 0 or a >= 0.5 -%}
        {{ exceptions.raise_compiler_error("var 'ss_gate_alpha' must be a number in (0, 0.5), got " ~ a) }}
    {%- endif -%}
    {{ return(a | float) }}
{% endmacro %}

{#- The standard normal quantile of p in (0, 1), at compile time (Jinja has no math module):
    bisection on the normal CDF written with exp (Abramowitz & Stegun 7.1.26, error < 1.5e-7). -#}
{% macro normal_quantile(p) %}
    {%- set e = 2.718281828459045 -%}
    {%- set state = {'lo': -10.0, 'hi': 10.0} -%}
    {%- for _ in range(80) -%}
        {%- set mid = (state.lo + state.hi) / 2 -%}
        {%- set x = (mid if mid >= 0 else -mid) / 1.4142135623730951 -%}
        {%- set t = 1.0 / (1.0 + 0.3275911 * x) -%}
        {%- set poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) -%}
        {%- set erf = 1.0 - poly * e ** (-x * x) -%}
        {%- set cdf = 0.5 * (1.0 + (erf if mid >= 0 else -erf)) -%}
        {%- if cdf < p -%}{%- do state.update({'lo': mid}) -%}{%- else -%}{%- do state.update({'hi': mid}) -%}{%- endif -%}
    {%- endfor -%}
    {{ return((state.lo + state.hi) / 2) }}
{% endmacro %}
