"""The library in one call: a survey's responses (and its frame) in, synthetic records for the
thin cells and cell estimates out, as the dbt package computes them but without a warehouse.

>>> result = synthesize_survey(responses, config, frame=frame)
>>> result.records      # synthetic records, m implicates stacked (column implicate)
>>> result.estimates    # cell x wave x indicator estimates with SE and 95% interval

The dbt package adds what a single call cannot: calibration to population margins, domains
coarser than a cell, the method choice between direct and augmented estimates, the release gates
and disclosure control. Use it for exploration and scripts; publish through dbt."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import support_table


@dataclass(frozen=True)
class SurveySynthesis:
    """What :func:`synthesize_survey` returns."""

    #: the support map: every cell x wave with n respondents, N population and support class
    support: pd.DataFrame
    #: synthetic records (column ``implicate`` 1..m, ``synth_weight`` the units each stands for)
    records: pd.DataFrame
    #: one row per cell x wave x indicator: estimate, se, ci_low, ci_high, cell_role, ...
    estimates: pd.DataFrame


def synthesize_survey(
    responses: pd.DataFrame,
    config: SynthConfig,
    frame: pd.DataFrame | None = None,
    totals: pd.DataFrame | None = None,
    sparse_below_n: int = 10,
) -> SurveySynthesis:
    """Synthesize records for the sparse and empty cells of ``responses`` and estimate every
    cell x wave.

    ``responses``: one row per unit x wave with ``config``'s unit id, wave, cell dimensions,
    outcomes (and design weight). ``frame``: one row per population unit with the cell
    dimensions (and auxiliaries); or ``totals``: population counts per cell (column
    n_population). Cells with fewer than ``sparse_below_n`` respondents are sparse."""
    from surveysynth.estimation.augmented import augmented_cell_estimates
    from surveysynth.synthesis.api import synthesize

    support = support_table(
        responses, config, frame=frame, totals=totals, sparse_below_n=sparse_below_n
    )
    records = synthesize(responses, frame, support, config)
    estimates = augmented_cell_estimates(responses, records, support, config)
    return SurveySynthesis(support=support, records=records, estimates=estimates)
