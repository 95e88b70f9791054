"""The privacy ledger: one row per DP measurement of the synthesis run and the composed total
(surveysynth.privacy.ledger). No rows when ss_privacy_mode is off. The gate
privacy_budget_within_limits (tests/dbt_tests) fails the build when the total is over
ss_dp_epsilon / ss_dp_delta; release_gates waits for it."""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    from surveysynth.dbt_glue import project_vars
    from surveysynth.privacy.dbt import dp_vars, ledger_model

    return ledger_model(
        project_vars(dbt.config.get("ss_vars")),
        dp_vars(dbt.config.get("ss_dp_vars")),
        synthetic=dbt.ref("synthetic_microdata"),
    )
