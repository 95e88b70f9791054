"""The release about to be staged: its id, fixed before any release table is written, so that
every released row can carry it.

``release_id`` is a hash of the synthesis run id, the release vars and the content of everything
the release tables are made from (synthetic_microdata, domain_estimates_protected,
table_suppression, release_aux_bands): the same inputs, vars and seed give the same id, any change
of what would be released gives a new one. release_publish publishes the staged tables only when
every one of them and the staged manifest carry this same id."""

import hashlib
import json


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    import pandas as pd

    from surveysynth.dbt_glue import to_pandas
    from surveysynth.seeding import content_hash

    raw_vars = dbt.config.get("ss_release_vars")
    release_vars = json.loads(raw_vars) if raw_vars else {}
    # built only when every gate test passed; read too, so that a build that selects the release
    # without the gate tests (`--select release_candidate+`) cannot publish past a failing gate
    gates = to_pandas(dbt.ref("release_gates"))
    failing = gates.loc[~gates["passed"].astype(bool), "gate"].tolist()
    if failing:
        raise RuntimeError(
            f"release refused: gate(s) {failing} fail on the tables as they stand; "
            "fix them and run dbt build, which runs the gate tests"
        )
    relations = {
        "synthetic_microdata": dbt.ref("synthetic_microdata"),
        "domain_estimates_protected": dbt.ref("domain_estimates_protected"),
        "table_suppression": dbt.ref("table_suppression"),
        "release_aux_bands": dbt.ref("release_aux_bands"),
    }
    sources = {name: content_hash(to_pandas(rel)) for name, rel in relations.items()}
    synthesis = to_pandas(dbt.ref("synthesis_manifest"))
    run_id = str(synthesis["synth_run_id"].iloc[0]) if len(synthesis) else None
    payload = json.dumps(
        {"synth_run_id": run_id, "release_vars": release_vars, "sources": sources},
        sort_keys=True,
    )
    return pd.DataFrame(
        [
            {
                "release_id": hashlib.sha256(payload.encode()).hexdigest()[:16],
                "synth_run_id": run_id,
                "release_vars": json.dumps(release_vars, sort_keys=True),
                "source_hashes": json.dumps(sources, sort_keys=True),
            }
        ]
    )
