"""Disclosure risk (surveysynth.checks.risk_gate): membership, distance and attribute-inference
attacks on the risk fit's records against its train / holdout units (risk_holdout), each against
its permutation null; copies of respondents among the released records."""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    from surveysynth.checks.risk_gate import disclosure_gate
    from surveysynth.dbt_glue import _progress_to_terminal, project_vars, to_pandas

    _progress_to_terminal()

    return disclosure_gate(
        project_vars(dbt.config.get("ss_vars")),
        responses=to_pandas(dbt.ref("stg_responses")),
        roles=to_pandas(dbt.ref("risk_holdout")),
        risk_synthetic=to_pandas(dbt.ref("risk_synthetic_microdata")),
        released=to_pandas(dbt.ref("synthetic_microdata")),
    )
