"""Holdout back-test of the augmented estimates: supported cells thinned to sparse sizes,
synthesized as if sparse, augmented and direct estimates compared with the full-sample value (and
the truth, var ss_backtest_truth). Logic in surveysynth.checks.backtest; gate in backtest_summary."""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    from surveysynth.checks.backtest import backtest_model
    from surveysynth.dbt_glue import _progress_to_terminal, project_vars

    _progress_to_terminal()

    return backtest_model(
        project_vars(dbt.config.get("ss_vars")),
        responses=dbt.ref("stg_responses"),
        frame=dbt.ref("stg_frame"),
        support=dbt.ref("cell_support"),
        weights=dbt.ref("calibrated_weights"),
        session=session,
    )
