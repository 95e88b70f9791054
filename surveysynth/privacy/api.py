"""DP mode's entry point: measure (the only look at answers), fit, plan, sample.

    settings = DPSettings.from_vars(dbt_vars, config)
    records, ledger = dp_synthesize(responses, frame, support, config, settings)

The fit reads the noisy statistics only. The plan (which frame units get records, as the
hierarchical synthesizer plans them) reads the frame and the support map, whose waves come from
the responses and whose classes from the exact respondent counts: it is not private
(docs/privacy.md, "Limits").
"""

from __future__ import annotations

import hashlib
import json
import logging

import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import prepare_inputs
from surveysynth.privacy.fit import DPModel, fit_dp, sample_dp
from surveysynth.privacy.ledger import ledger_frame
from surveysynth.privacy.measure import DPSettings, NoisyStats, measure
from surveysynth.privacy.register import RegisterRanks
from surveysynth.synthesis.plan import build_plan, with_implicates

log = logging.getLogger("surveysynth")


def dp_run_id(config: SynthConfig, stats: NoisyStats) -> str:
    """Run id from the seed, the config and the noisy statistics (a new draw of the noise is a
    new run)."""
    h = hashlib.sha256(json.dumps({"seed": config.seed, "config": config.to_json()}).encode())
    for d in (stats.counts, stats.logsum, stats.resid):
        for k in sorted(d):
            h.update(d[k].tobytes())
    h.update(stats.scores.tobytes())
    return h.hexdigest()[:16]


def dp_synthesize(
    responses: pd.DataFrame,
    frame: pd.DataFrame | None,
    support: pd.DataFrame,
    config: SynthConfig,
    settings: DPSettings,
) -> tuple[pd.DataFrame, pd.DataFrame, DPModel]:
    """Synthetic records (same columns as the hierarchical synthesizer's), the privacy ledger
    and the fitted model."""
    register = RegisterRanks(frame, config)
    stats = measure(responses, support, config, settings, register)
    ledger = ledger_frame(stats.ledger, settings.delta)
    log.info(
        "dp: %d measurements, rho %.4g, epsilon %.4g at delta %.3g",
        len(stats.ledger),
        ledger["rho"].iloc[-1],
        ledger["epsilon"].iloc[-1],
        settings.delta,
    )
    model = fit_dp(stats, config)
    plan = plan_dp(responses, frame, support, config)
    out = sample_dp(plan, model, config, dp_run_id(config, stats), register)
    return out, ledger, model


def plan_dp(
    responses: pd.DataFrame, frame: pd.DataFrame | None, support: pd.DataFrame, config: SynthConfig
) -> pd.DataFrame:
    """The records to generate (the hierarchical synthesizer's plan: frame units of the cells to
    augment), one row per record x implicate."""
    inputs = prepare_inputs(responses, frame, support, config)
    return with_implicates(build_plan(inputs, config), config.m, config.wave)
