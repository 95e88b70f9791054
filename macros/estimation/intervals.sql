{#- Interval ends on the scale of the estimate (docs/estimation.md, "Intervals"). Each macro returns
    a dict {lo, hi} of SQL expressions; `t` is the two-sided t (or normal) quantile expression.
    A null SE gives a null interval. -#}

{#- A share: Wilson's score interval with the design effective sample size (Korn & Graubard 1998)
    and the normal quantile `q` (the score interval's variance is p (1 - p) / n* at the hypothesised
    p: nothing is estimated that a t would allow for; the design effect is carried by n*).
    n* = p (1 - p) / V(p) when 0 < p < 1 and V > 0; at p = 0 or 1 (no variance to read) the Kish
    n = (sum w)^2 / sum w^2. Always inside [0, 1]; at p = 0 the lower end is exactly 0 (and at
    p = 1 the upper 1: centre - half reaches 0 there only up to a rounding residue). A zero variance with
    0 < p < 1 (a census) gives [p, p]. -#}
{% macro share_interval_wilson(p, se, n_kish, q) %}
    {%- set t = q -%}
    {%- set ok = '(' ~ p ~ ' > 0 and ' ~ p ~ ' < 1 and ' ~ se ~ ' > 0)' -%}
    {%- set n_star = '(case when ' ~ ok ~ ' then ' ~ p ~ ' * (1 - ' ~ p ~ ') / (' ~ se ~ ' * ' ~ se ~ ') else ' ~ n_kish ~ ' end)' -%}
    {%- set a = '((' ~ t ~ ') * (' ~ t ~ ') / ' ~ n_star ~ ')' -%}
    {%- set centre = '((' ~ p ~ ' + ' ~ a ~ ' / 2e0) / (1e0 + ' ~ a ~ '))' -%}
    {%- set half = '((' ~ t ~ ') / (1e0 + ' ~ a ~ ') * sqrt(greatest(' ~ p ~ ' * (1 - ' ~ p ~ ') / ' ~ n_star ~ ' + ' ~ a ~ ' / (4e0 * ' ~ n_star ~ '), 0e0)))' -%}
    {%- set degenerate = '(' ~ se ~ ' = 0 and ' ~ p ~ ' > 0 and ' ~ p ~ ' < 1)' -%}
    {%- set guard = '(' ~ se ~ ' is null or ' ~ p ~ ' is null or not (' ~ n_star ~ ' > 0))' -%}
    {{ return({
        'lo': 'case when ' ~ guard ~ ' then null when ' ~ degenerate ~ ' then ' ~ p ~ ' when ' ~ p ~ ' <= 0 then 0e0 else greatest(0e0, ' ~ centre ~ ' - ' ~ half ~ ') end',
        'hi': 'case when ' ~ guard ~ ' then null when ' ~ degenerate ~ ' then ' ~ p ~ ' when ' ~ p ~ ' >= 1 then 1e0 else least(1e0, ' ~ centre ~ ' + ' ~ half ~ ') end'}) }}
{% endmacro %}


{#- A share of a finite domain of N units, from an estimate and an RMSE (model-based or composite):
    built on the empirical logit of the population count, theta = ln((N q + 1/2) / (N (1 - q) + 1/2)),
    theta +- t rmse dtheta/dq, mapped back by q = ((N + 1) expit(theta) - 1/2) / N and clipped to
    [0, 1]. With a small N the ends can reach 0 and 1, which the population share can be (all 13
    firms of a cell trading); a plain logit interval never can. With `half_step` and se > 0 each
    end moves out by half a step 1 / (2N) before the clip: the population share is a multiple of
    1/N, and this is the equal-tailed interval on that lattice (the Python twin's
    LATTICE_HALF_STEP); a share known without error (a census) stays exact. The combined
    (Rubin) intervals take it; the published ones, whose MSE carries the back-test's allowance,
    do not (docs/estimation.md, "The half step"). -#}
{% macro share_interval_elogit(q, se, t, n_pop, half_step=true) %}
    {%- set N = '(cast(' ~ n_pop ~ ' as ' ~ surveysynth.type_double() ~ '))' -%}
    {%- set qc = '(least(greatest(' ~ q ~ ', 0e0), 1e0))' -%}
    {%- set theta = 'ln((' ~ N ~ ' * ' ~ qc ~ ' + 0.5e0) / (' ~ N ~ ' * (1e0 - ' ~ qc ~ ') + 0.5e0))' -%}
    {%- set slope = '(' ~ N ~ ' / (' ~ N ~ ' * ' ~ qc ~ ' + 0.5e0) + ' ~ N ~ ' / (' ~ N ~ ' * (1e0 - ' ~ qc ~ ') + 0.5e0))' -%}
    {%- set guard = '(' ~ se ~ ' is null or ' ~ q ~ ' is null or not (' ~ N ~ ' > 0))' -%}
    {%- set ends = {} -%}
    {%- for side, sign in [('lo', '-'), ('hi', '+')] -%}
        {%- set x = 'least(greatest(' ~ theta ~ ' ' ~ sign ~ ' (' ~ t ~ ') * ' ~ se ~ ' * ' ~ slope ~ ', -700e0), 700e0)' -%}
        {%- set step = '(case when ' ~ se ~ ' > 0 then 0.5e0 else 0e0 end)' if half_step else '0e0' -%}
        {%- set back = '(((' ~ N ~ ' + 1e0) / (1e0 + exp(-(' ~ x ~ '))) - 0.5e0 ' ~ sign ~ ' ' ~ step ~ ') / ' ~ N ~ ')' -%}
        {%- do ends.update({side: 'case when ' ~ guard ~ ' then null else least(1e0, greatest(0e0, ' ~ back ~ ')) end'}) -%}
    {%- endfor -%}
    {{ return(ends) }}
{% endmacro %}


{#- A mean, total or ratio: t on the log scale, est * exp(+- t se / est), when the outcome cannot be
    negative and the estimate is positive (skewed positive outcomes such as turnover: the interval
    reaches further up than down, and never below 0); otherwise est +- t se. -#}
{% macro mean_interval(est, se, t, nonneg) %}
    {%- set log_ok = '(' ~ nonneg ~ ' and ' ~ est ~ ' > 0)' -%}
    {%- set r = 'least((' ~ t ~ ') * ' ~ se ~ ' / ' ~ est ~ ', 700e0)' -%}
    {{ return({
        'lo': 'case when ' ~ se ~ ' is null then null when ' ~ log_ok ~ ' then ' ~ est ~ ' * exp(-' ~ r ~ ') else ' ~ est ~ ' - (' ~ t ~ ') * ' ~ se ~ ' end',
        'hi': 'case when ' ~ se ~ ' is null then null when ' ~ log_ok ~ ' then ' ~ est ~ ' * exp(' ~ r ~ ') else ' ~ est ~ ' + (' ~ t ~ ') * ' ~ se ~ ' end'}) }}
{% endmacro %}


{#- The interval method's label, for the interval_method columns. -#}
{% macro interval_label(kind, est, nonneg) %}
    {%- if kind == 'wilson' -%}
        {{ return("'wilson'") }}
    {%- elif kind == 'elogit' -%}
        {{ return("'logit_t'") }}
    {%- endif -%}
    {{ return("case when " ~ nonneg ~ " and " ~ est ~ " > 0 then 'log_t' else 't' end") }}
{% endmacro %}
