"""Synthetic records for thin cells (augment mode) or the whole survey (replica mode).

Reads the staged responses without the disclosure-risk holdout (synthesis_responses), the frame and
the support map, and calls the library's synthesizer; every row says it is synthetic (is_synthetic,
implicate, synth_run_id, synth_method). With ss_privacy_mode: dp the synthesizer is fitted from
noisy statistics only (surveysynth.privacy, docs/privacy.md).
"""


def model(dbt, session):
    from surveysynth.versions import require_matching_versions

    require_matching_versions(dbt.config.get("surveysynth_version"))
    dbt.config(materialized="table")
    from surveysynth.dbt_glue import project_vars, synthesize_model
    from surveysynth.privacy.dbt import dp_enabled, dp_synthesize_model, dp_vars

    dpv = dp_vars(dbt.config.get("ss_dp_vars"))
    body = (
        (lambda v, **kw: dp_synthesize_model(v, dpv, **kw)) if dp_enabled(dpv) else synthesize_model
    )
    return body(
        project_vars(dbt.config.get("ss_vars")),
        responses=dbt.ref("synthesis_responses"),
        frame=dbt.ref("stg_frame"),
        support=dbt.ref("cell_support"),
        weights=dbt.ref("calibrated_weights"),
    )
