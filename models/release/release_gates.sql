{#- a view: it reads the gated tables as they are now. As a table it kept the rows of the last
    build that passed, and `dbt build --select release_candidate+` after a failed gate published
    a release whose manifest said every gate passed -#}
{{ config(materialized='view') }}
{{ surveysynth.validate_config() }}
{#- Every gate the release waits for, one row each: the gated model, the dbt data test that enforces
    it (severity error), how many rows it checked and how many fail. The release models depend on
    this model, and it depends on every gated model, so when any gate test fails `dbt build` skips
    this model and the release behind it: the previous release tables stay as they were. The rows
    repeat each gate's own condition (the test macros themselves, or the same one-line condition),
    so the manifest records what was checked; the test all_release_gates_passed re-checks them. -#}
{%- set gates = [
    {'gate': 'quarantine_share', 'model': 'quarantined_responses', 'test': 'quarantine_share_within_threshold',
     'sql': surveysynth.test_quarantine_share_below(model=ref('quarantined_responses'), checked=ref('int_responses_checked'), max_share=var('ss_max_quarantine_share'))},
    {'gate': 'nonresponse_classes', 'model': 'nonresponse_adjustment', 'test': 'nonresponse_classes_resolved',
     'sql': surveysynth.test_nonresponse_classes_resolved(model=ref('nonresponse_adjustment'))},
    {'gate': 'calibration_convergence', 'model': 'calibration_convergence', 'test': 'calibration_converged',
     'sql': surveysynth.test_calibration_converged(model=ref('calibration_convergence'))},
    {'gate': 'calibration_margins', 'model': 'calibration_margin_check', 'test': 'margins_within_tolerance',
     'sql': surveysynth.test_margins_within_tolerance(model=ref('calibration_margin_check'))},
    {'gate': 'augmented_calibration_convergence', 'model': 'augmented_calibration_convergence', 'test': 'augmented_calibration_converged',
     'sql': surveysynth.test_calibration_converged(model=ref('augmented_calibration_convergence'))},
    {'gate': 'augmented_calibration_margins', 'model': 'augmented_margin_check', 'test': 'augmented_weights_meet_margins',
     'sql': surveysynth.test_margins_within_tolerance(model=ref('augmented_margin_check'))},
    {'gate': 'business_rules', 'model': 'synthetic_microdata', 'test': 'synthetic_rows_meet_business_rules',
     'sql': surveysynth.test_business_rules_hold(model=ref('synthetic_microdata'))},
    {'gate': 'disclosure_risk', 'model': 'disclosure_metrics', 'test': 'disclosure_risk_within_thresholds',
     'sql': 'select * from ' ~ ref('disclosure_metrics') ~ ' where not passed'},
    {'gate': 'fidelity', 'model': 'fidelity_metrics', 'test': 'fidelity_within_thresholds',
     'sql': 'select * from ' ~ ref('fidelity_metrics') ~ ' where not passed'},
    {'gate': 'threshold_rule', 'model': 'published_cell_check', 'test': 'published_cells_meet_threshold_rule',
     'sql': 'select * from ' ~ ref('published_cell_check') ~ ' where unsafe_threshold'},
    {'gate': 'dominance_rules', 'model': 'published_cell_check', 'test': 'published_cells_meet_dominance_rules',
     'sql': 'select * from ' ~ ref('published_cell_check') ~ ' where unsafe_dominance or unsafe_p'},
    {'gate': 'suppression_audit', 'model': 'suppression_audit', 'test': 'suppressed_cells_are_protected',
     'sql': 'select * from ' ~ ref('suppression_audit') ~ ' where not protected'},
    {'gate': 'privacy_budget', 'model': 'privacy_ledger', 'test': 'privacy_budget_within_limits',
     'sql': 'select * from ' ~ ref('privacy_ledger') ~ ' where is_total and (epsilon > epsilon_limit * (1 + 1e-9) or delta > delta_limit * (1 + 1e-9))'},
] -%}
{%- if var('ss_backtest_enabled', true) -%}
    {%- do gates.append({'gate': 'backtest', 'model': 'backtest_summary', 'test': 'backtest_gate',
        'sql': surveysynth.test_backtest_thresholds_met(model=ref('backtest_summary'))}) -%}
{%- endif -%}

with
{% for g in gates -%}
gate_{{ loop.index }} as (

    select
        {{ loop.index }} as gate_order,
        '{{ g.gate }}' as gate,
        '{{ g.model }}' as gated_model,
        '{{ g.test }}' as gate_test,
        (select count(*) from {{ ref(g.model) }}) as n_checked,
        (select count(*) from ({{ g.sql }}) as failing) as n_failing

),

{% endfor -%}

stacked as (

    {% for g in gates -%}
    select * from gate_{{ loop.index }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

final as (

    select
        gate_order,
        gate,
        gated_model,
        gate_test,
        n_checked,
        n_failing,
        case when n_failing = 0 then true else false end as passed
    from stacked

)

select * from final
