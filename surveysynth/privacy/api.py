"""DP mode's entry point: measure (the only look at answers), fit, plan, sample.

    settings = DPSettings.from_vars(dbt_vars, config)
    records, ledger = dp_synthesize(responses, frame, support, config, settings)

The fit reads the noisy statistics only. The plan is public: every frame cell x every wave of
``ss_dp_waves``, records for all of a cell's units (up to ``ss_synth_max_records_per_cell``),
whoever answered. It reads the frame and the vars, never the responses, so the records are a
function of the noisy statistics and public inputs alone (docs/privacy.md, "What the guarantee
covers").
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace

import numpy as np
import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import CELL_ID, SynthInputError, prepare_inputs
from surveysynth.privacy.fit import DPModel, fit_dp, sample_dp
from surveysynth.privacy.ledger import ledger_frame
from surveysynth.privacy.measure import DPSettings, NoisyStats, measure
from surveysynth.privacy.register import RegisterRanks
from surveysynth.synthesis.plan import build_plan, with_implicates

log = logging.getLogger("surveysynth")

#: the records' support_class in DP mode: the public plan gives every cell records, whatever its
#: respondents (the class from the exact counts is not released with them)
PUBLIC_CLASS = "public_plan"


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
    support = public_support(responses, support, config, settings.waves)
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
    out["support_class"] = PUBLIC_CLASS
    return out, ledger, model


def public_support(
    responses: pd.DataFrame, support: pd.DataFrame, config: SynthConfig, waves
) -> pd.DataFrame:
    """The public plan's support map: every frame cell of ``support`` (its dimensions and
    population count, from the frame) x each of the design's ``waves``, read as a cell the plan
    knows nothing about (class empty, no respondents). Responses in a wave not listed are an
    error: they would otherwise fall out of the statistics unnoticed."""
    cols = [CELL_ID, *[d for d in config.cell_dims if d in support.columns], "n_population"]
    cells = support[cols].drop_duplicates(CELL_ID).reset_index(drop=True)
    wv = _like(waves, support[config.wave])
    seen = pd.Series(responses[config.wave].unique())
    stray = seen[~seen.astype(str).isin(pd.Series(wv).astype(str))]
    if len(stray):
        raise SynthInputError(
            f"{len(stray)} wave(s) in the responses are not in ss_dp_waves {list(waves)}, e.g. "
            f"{stray.iloc[0]!r}: list every wave of the design"
        )
    out = cells.loc[cells.index.repeat(len(wv))].reset_index(drop=True)
    out[config.wave] = np.tile(np.asarray(wv, dtype=object), len(cells))
    out[config.wave] = out[config.wave].astype(support[config.wave].dtype)
    return out.assign(n_respondents=0, support_class="empty")


def _like(values, column: pd.Series) -> list:
    """``values`` (from a var) in the type of ``column`` (numeric or text)."""
    if pd.api.types.is_numeric_dtype(column):
        return pd.to_numeric(pd.Series(list(values))).tolist()
    return [str(x) for x in values]


def plan_dp(
    responses: pd.DataFrame, frame: pd.DataFrame | None, support: pd.DataFrame, config: SynthConfig
) -> pd.DataFrame:
    """The records to generate from the public support map: all frame units of every cell x wave
    (capped per cell as ``ss_synth_max_records_per_cell`` says), one row per record x implicate.
    Only the responses' columns are passed on (no row): the plan's inputs are the frame, the
    public support map and the vars."""
    c = replace(config, augment_classes=("empty",), augment_units="all")
    inputs = prepare_inputs(responses.iloc[:0], frame, support, c)
    return with_implicates(build_plan(inputs, c), c.m, c.wave)


def nonrespondent_records(
    records: pd.DataFrame, responses: pd.DataFrame, support: pd.DataFrame, config: SynthConfig
) -> pd.DataFrame:
    """The DP records as the augmented estimates read them (int_augmented_units in DP mode): a
    record of a unit that answered in its wave is left out, and a cell x wave's other records
    stand for its N - n non-respondents (``synth_weight`` = (N - n) / the records left, per
    implicate), so the cell's respondents can represent themselves. ``support``: the support map
    of the respondents (its n_respondents and n_population)."""
    c = config
    keys = [CELL_ID, c.wave]
    answered = pd.MultiIndex.from_frame(responses[[c.unit_id, c.wave]].astype(str))
    own = pd.MultiIndex.from_frame(records[[c.unit_id, c.wave]].astype(str))
    out = records[~own.isin(answered)]
    s = support[[*keys, "n_population", "n_respondents"]]
    non = out[keys].merge(s, on=keys, how="left")
    n_non = (non["n_population"] - non["n_respondents"]).to_numpy(dtype=float)
    left = out.groupby([*keys, "implicate"], sort=False)[c.wave].transform("size").to_numpy()
    return out.assign(synth_weight=n_non / left)
