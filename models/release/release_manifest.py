"""The release manifest: one row that signs off the release (release id, synthesis run id, input
hashes, parameters, library versions, every gate's outcome and the metric values, each released
table's rows and content hash). Staged with the release tables and published with them in one
transaction (release_publish). Its properties and `ss_vars` config are in
python_models/_python_models.yml, where the vars are rendered."""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table", schema="surveysynth_release_staging")
    from surveysynth.checks.gates import release_manifest
    from surveysynth.dbt_glue import project_vars, to_pandas
    from surveysynth.privacy.dbt import privacy_budget

    candidate = to_pandas(dbt.ref("release_candidate")).iloc[0]
    manifest = release_manifest(
        project_vars(dbt.config.get("ss_vars")),
        gates=to_pandas(dbt.ref("release_gates")),
        synthesis=to_pandas(dbt.ref("synthesis_manifest")),
        disclosure=to_pandas(dbt.ref("disclosure_metrics")),
        fidelity=to_pandas(dbt.ref("fidelity_metrics")),
        releases={
            "synthetic_microdata_release": to_pandas(dbt.ref("synthetic_microdata_release")),
            "domain_estimates_release": to_pandas(dbt.ref("domain_estimates_release")),
            "published_tables_release": to_pandas(dbt.ref("published_tables_release")),
        },
    )
    # the id every released row carries (fixed by release_candidate before the tables were built)
    manifest["release_id"] = candidate["release_id"]
    manifest["release_vars"] = candidate["release_vars"]
    # the differential-privacy budget spent by the synthesis run (docs/privacy.md)
    manifest["privacy_budget"] = privacy_budget(to_pandas(dbt.ref("privacy_ledger")))
    return manifest
