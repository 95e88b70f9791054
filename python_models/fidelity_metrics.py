"""Fidelity of the synthetic records to the real respondents of the same cells
(surveysynth.checks.fidelity over surveysynth.checks.gates): marginals, pairwise dependence, pMSE, confidence
interval overlap by region and of a regression, the worst region, rare categories."""


def model(dbt, session):
    dbt.config(materialized="table")
    from surveysynth.dbt_glue import project_vars, to_pandas
    from surveysynth.checks.gates import fidelity_report

    return fidelity_report(
        project_vars(dbt.config.get("ss_vars")),
        responses=to_pandas(dbt.ref("stg_responses")),
        weights=to_pandas(dbt.ref("calibrated_weights")),
        synthetic=to_pandas(dbt.ref("synthetic_microdata")),
    )
