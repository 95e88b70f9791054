"""Fidelity of the synthetic records to the respondents the synthesizer saw, each statistic read
against its real-vs-real reference (surveysynth.checks.fidelity_gate): marginals, dependence
between answers and on the register, cell-level contingency, regions, interval overlap, rare
levels, S_pMSE."""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    from surveysynth.checks.fidelity_gate import fidelity_gate
    from surveysynth.dbt_glue import _progress_to_terminal, project_vars, to_pandas

    _progress_to_terminal()

    return fidelity_gate(
        project_vars(dbt.config.get("ss_vars")),
        responses=to_pandas(dbt.ref("synthesis_responses")),
        weights=to_pandas(dbt.ref("calibrated_weights")),
        synthetic=to_pandas(dbt.ref("synthetic_microdata")),
    )
