"""Shared set-up of the synthesizer tests on small planted person tables: a replica-mode
config over one cell dimension (``region``) and the synthesis of a table with it."""

from __future__ import annotations

import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import support_table
from surveysynth.synthesis import api


def replica_config(outcomes: dict, seed: int) -> SynthConfig:
    """One implicate of a fully synthetic copy; units ``unit``, wave ``period``."""
    return SynthConfig.from_vars(
        {
            "ss_unit_id": "unit",
            "ss_wave": "period",
            "ss_cell_dims": ["region"],
            "ss_outcomes": outcomes,
            "ss_synth_mode": "replica",
            "ss_synth_m": 1,
            "ss_seed": seed,
        }
    )


def replica(resp: pd.DataFrame, cfg: SynthConfig) -> pd.DataFrame:
    """The synthetic copy of ``resp`` (each region's count as its population)."""
    tot = resp.groupby("region").size().rename("n_population").reset_index()
    return api.synthesize(resp, None, support_table(resp, cfg, totals=tot), cfg)
