"""Secondary suppression of the protected tables (the primary rules run in SQL, in
models/disclosure/table_primary_suppression.sql). Complementary cells are chosen in Python by
surveysynth.disclosure.tables, since choosing them needs the LP audit in the loop, which SQL cannot do."""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    from surveysynth.checks.gates import protect_tables
    from surveysynth.dbt_glue import to_pandas

    return protect_tables(to_pandas(dbt.ref("table_primary_suppression")))
