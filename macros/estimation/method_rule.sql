{#- The method rule of domain_estimates (docs/estimation.md, "Method by estimated error"), as SQL
    expressions over columns, so that the model and the tests use one definition.

    V_d = the direct estimate's (df-penalised) variance, M_a = the augmented estimate's (df-penalised)
    MSE (Rubin's T plus the bias allowance), rho = the correlation of their errors. The composite
    phi d + (1 - phi) a has
        MSE(phi) = phi^2 V_d + (1 - phi)^2 M_a + 2 phi (1 - phi) C,   C = rho sqrt(V_d M_a),
    smallest at phi* = (M_a - C) / (M_a + V_d - 2 C), clipped to [0, 1]. -#}

{#- phi*, or null where the composite is not considered (`eligible` false, or either error unknown). -#}
{% macro composite_phi(v_d, m_a, rho, eligible='true') %}
    {%- set c = '(' ~ rho ~ ' * sqrt(' ~ v_d ~ ' * ' ~ m_a ~ '))' -%}
    {{ return('case when (' ~ eligible ~ ') and ' ~ v_d ~ ' is not null and ' ~ m_a ~ ' is not null and '
        ~ v_d ~ ' + ' ~ m_a ~ ' > 0 then least(greatest((' ~ m_a ~ ' - ' ~ c ~ ') / nullif(' ~ m_a ~ ' + '
        ~ v_d ~ ' - 2e0 * ' ~ c ~ ', 0e0), 0e0), 1e0) end') }}
{% endmacro %}


{#- The correlation of the direct and augmented errors the composite uses: the back-test's measured
    rho (0 where it measured none), but at least the part the two estimates share by construction.
    The completed cell's mean counts its respondents with the weight 1 - s (s the model share)
    and the records' part leans on the same respondents through the cell effect (a non-negative
    covariance), so cov(e_d, e_a) >= (1 - s) V_d and rho >= (1 - s) sqrt(V_d / M_a); capped at
    0.95 as the measured one. Without the floor a domain with many respondents and no back-test
    (rho 0) got a composite whose MSE was far below both estimates' (docs/estimation.md). -#}
{% macro composite_corr(rho, model_share, v_d, m_a) %}
    {{ return('least(greatest(coalesce(' ~ rho ~ ', 0e0), case when ' ~ m_a ~ ' > 0 and ' ~ v_d
        ~ ' >= 0 then (1e0 - ' ~ model_share ~ ') * sqrt(' ~ v_d ~ ' / ' ~ m_a ~ ') else 0e0 end), 0.95e0)') }}
{% endmacro %}


{#- MSE(phi) of the composite. -#}
{% macro composite_mse(phi, v_d, m_a, rho) %}
    {{ return('(' ~ phi ~ ' * ' ~ phi ~ ' * ' ~ v_d ~ ' + (1e0 - ' ~ phi ~ ') * (1e0 - ' ~ phi ~ ') * ' ~ m_a
        ~ ' + 2e0 * ' ~ phi ~ ' * (1e0 - ' ~ phi ~ ') * ' ~ rho ~ ' * sqrt(' ~ v_d ~ ' * ' ~ m_a ~ '))') }}
{% endmacro %}


{#- 'direct', 'augmented', 'composite' or 'none': where the composite is considered, by phi* (1 ->
    direct, 0 -> augmented, else composite: its MSE is then below both); elsewhere the smaller of V_d
    and M_a (a domain whose augmented estimate has no model part is direct: the same respondents,
    no model). -#}
{% macro method_choice(v_d, m_a, phi, model_share) %}
    {{ return('case'
        ~ ' when ' ~ v_d ~ ' is not null and (' ~ model_share ~ ' = 0 or ' ~ m_a ~ ' is null'
        ~ ' or (' ~ phi ~ ' is null and ' ~ v_d ~ ' <= ' ~ m_a ~ ') or ' ~ phi ~ ' >= 0.999e0) then \'direct\''
        ~ ' when ' ~ m_a ~ ' is not null and (' ~ phi ~ ' is null or ' ~ phi ~ ' <= 0.001e0) then \'augmented\''
        ~ ' when ' ~ phi ~ ' is not null then \'composite\''
        ~ ' else \'none\' end') }}
{% endmacro %}
