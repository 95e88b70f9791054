"""Provenance of the synthesis run: run id, seed, method, parameters, input row counts and
content hashes, library versions and timings (one row)."""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    from surveysynth.dbt_glue import manifest_model, project_vars

    return manifest_model(
        project_vars(dbt.config.get("ss_vars")),
        synthetic=dbt.ref("synthetic_microdata"),
        responses=dbt.ref("synthesis_responses"),
        frame=dbt.ref("stg_frame"),
        support=dbt.ref("cell_support"),
        weights=dbt.ref("calibrated_weights"),
    )
