"""Disclosure risk of the synthetic records (surveysynth.checks.risk over surveysynth.checks.gates): exact
matches, replicated uniques, distance to closest record, membership inference, attribute
inference and k-anonymity, against the real holdout of models/disclosure/risk_holdout.sql."""


def model(dbt, session):
    dbt.config(materialized="table")
    from surveysynth.dbt_glue import project_vars, to_pandas
    from surveysynth.checks.gates import disclosure_report

    return disclosure_report(
        project_vars(dbt.config.get("ss_vars")),
        responses=to_pandas(dbt.ref("stg_responses")),
        roles=to_pandas(dbt.ref("risk_holdout")),
        synthetic=to_pandas(dbt.ref("synthetic_microdata")),
    )
