"""Dependence between answers survives synthesis, and the dependence check catches a
synthesizer that drops it.

A planted survey (4 regions, one wave): income (continuous), employed (binary, a steep logit
of log income: correlation about 0.7) and hours (continuous, missing exactly when not
employed: a structural skip). The replica from surveysynth.synthesis.api.synthesize is
checked with surveysynth.checks.dependence against the real-vs-real noise floor; the same
replica with its columns shuffled within each cell (marginals and cell means kept, the
dependence gone) must fail the same checks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from surveysynth.checks import dependence as dep
from surveysynth.contract.config import SynthConfig
from surveysynth.synthesis.api import support_table, synthesize

OUTCOMES = {
    "income": {"type": "continuous", "min": 0},
    "employed": {"type": "binary"},
    "hours": {"type": "continuous", "min": 0},
}
SPEC = {"region": {"type": "categorical"}, **OUTCOMES}
N = 4000


def planted(seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], N, p=[0.4, 0.3, 0.2, 0.1])
    shift = pd.Series(region).map({"north": 0.2, "south": 0.0, "east": -0.2, "west": 0.1})
    log_inc = 9.5 + shift.to_numpy() + rng.normal(0, 0.8, N)
    employed = (rng.random(N) < expit(2.5 * (log_inc - 9.5))).astype(np.int64)
    hours = np.where(employed == 1, np.clip(rng.normal(36, 8, N), 1, 70).round(), np.nan)
    return pd.DataFrame(
        {
            "unit_id": [f"u{i:05d}" for i in range(N)],
            "wave": 1,
            "region": region,
            "income": np.exp(log_inc).round(2),
            "employed": employed,
            "hours": hours,
        }
    )


def within_cell_shuffle(df: pd.DataFrame, cell: str, seed: int) -> pd.DataFrame:
    """A synthesizer that drops every dependence but the cell's: each outcome permuted on its
    own inside each cell."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    for idx in df.groupby(cell).indices.values():
        for c in OUTCOMES:
            out.loc[out.index[idx], c] = df[c].to_numpy()[idx][rng.permutation(len(idx))]
    return out


@pytest.fixture(scope="module")
def world():
    real = planted()
    train = real.sample(frac=0.5, random_state=3).sort_index()
    cfg = SynthConfig.from_vars(
        {
            "ss_unit_id": "unit_id",
            "ss_wave": "wave",
            "ss_cell_dims": ["region"],
            "ss_design_weight": None,
            "ss_outcomes": OUTCOMES,
            "ss_synth_mode": "replica",
            "ss_synth_m": 1,
            "ss_seed": 5,
        }
    )
    totals = real.groupby("region").size().rename("n_population").reset_index()
    syn = synthesize(train, None, support_table(train, cfg, totals=totals), cfg)
    cols = list(SPEC)
    kinds = dep.column_kinds(SPEC, real)
    return {
        "train": train[cols].reset_index(drop=True),
        "syn": syn[cols],
        "broken": within_cell_shuffle(syn[cols], "region", seed=8),
        "kinds": kinds,
        "noise": dep.split_noise(real[cols], kinds, n_splits=20, seed=1),
    }


def test_planted_world_has_the_structure(world):
    train, kinds = world["train"], world["kinds"]
    rho = train["income"].rank().corr(train["employed"].rank())
    assert rho > 0.6
    zeros = {z.describe().split(" (")[0] for z in dep.find_zeros(train, kinds)}
    assert "hours <missing> with employed = 1" in zeros
    assert "hours >0 with employed = 0" in zeros


def test_synthesizer_keeps_dependence_and_skip(world):
    pairs = dep.association_check(world["train"], {"syn": world["syn"]}, world["noise"])
    row = pairs.loc["income ~ employed"]
    assert abs(row["syn_diff"]) <= row["threshold"], row.to_dict()
    assert pairs["syn_within"].all(), pairs.loc[~pairs["syn_within"]].to_dict("index")
    skips = dep.missingness_check(world["train"], {"syn": world["syn"]}, world["noise"])
    assert skips["syn_within"].all(), skips.loc[~skips["syn_within"]].to_dict("index")
    zeros = dep.find_zeros(world["train"], world["kinds"])
    assert dep.violating_rows(world["syn"], zeros, world["kinds"]) == 0


def test_check_catches_a_synthesizer_that_drops_the_dependence(world):
    cands = {"broken": world["broken"]}
    pairs = dep.association_check(world["train"], cands, world["noise"])
    assert not pairs.loc["income ~ employed", "broken_within"]
    skips = dep.missingness_check(world["train"], cands, world["noise"])
    assert not skips.loc["missing(hours) | employed", "broken_within"]
    zeros = dep.find_zeros(world["train"], world["kinds"])
    assert dep.violating_rows(world["broken"], zeros, world["kinds"]) > 100
