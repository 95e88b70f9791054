"""The suppression audit: for every suppressed cell of every protected table, the interval an
intruder can derive from the published cells and margins (a linear program), against the
protection the primary rules require. Reads the pattern as table_suppression stored it."""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    from surveysynth.checks.gates import audit_tables
    from surveysynth.dbt_glue import to_pandas

    return audit_tables(to_pandas(dbt.ref("table_suppression")))
