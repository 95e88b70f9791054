{#- The unit relvariance of cell means pooled over cells, the generalized variance function's
    parameter (docs/estimation.md): rv = se^2 n / (1 - n/N) / est^2 averaged with weights n - 1,
    over rows carrying n_respondents and n_population. `se` and `estimate` are column expressions;
    the caller groups and filters (cells of a wave x indicator, n >= 2, n < N, est > 0). -#}
{% macro pooled_relvariance(se, estimate) -%}
    {%- set dbl = surveysynth.type_double() -%}
    {%- set unit_rv = se ~ ' * ' ~ se ~ ' * n_respondents / (1e0 - cast(n_respondents as ' ~ dbl
        ~ ') / n_population) / (' ~ estimate ~ ' * ' ~ estimate ~ ') * (n_respondents - 1)' -%}
    {{ surveysynth.dagg('sum', unit_rv) }} / {{ surveysynth.dagg('sum', 'n_respondents - 1') }}
{%- endmacro %}
