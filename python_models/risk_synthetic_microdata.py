"""The risk fit: the synthesizer fitted on the responses without the disclosure-risk holdout
(risk_holdout), for the attacks of disclosure_metrics only; never released. Cross-fitting: the
released synthetic_microdata is fitted on every response (surveysynth.checks.risk_gate)."""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    from surveysynth.checks.risk_gate import risk_synthesis
    from surveysynth.dbt_glue import _progress_to_terminal, project_vars

    _progress_to_terminal()
    return risk_synthesis(
        project_vars(dbt.config.get("ss_vars")),
        responses=dbt.ref("stg_responses"),
        roles=dbt.ref("risk_holdout"),
        frame=dbt.ref("stg_frame"),
        support=dbt.ref("cell_support"),
        weights=dbt.ref("calibrated_weights"),
    )
