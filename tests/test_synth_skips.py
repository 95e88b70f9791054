"""Skip cut points (structure.skip_splits): a numeric answer below which a later item is never
answered (no income under 16) is modelled as two sides, the side a logit of the earlier answers,
the value drawn within its side, so the share of records skipped follows the predictors; and a
count's continuous part is truncated at its floor instead of piling onto it
(sample._support)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from replica_worlds import replica, replica_config

from surveysynth.contract.config import SynthConfig
from surveysynth.synthesis import residuals, structure

N = 3000


def _world(seed: int) -> pd.DataFrame:
    """Persons: households with children (kind family) hold a child aged 0-15 with
    probability 0.6 and adults otherwise; adults-only households adults aged 18-85. Income
    is missing exactly for persons under 16."""
    rng = np.random.default_rng(seed)
    family = rng.random(N) < 0.5
    child = family & (rng.random(N) < 0.6)
    age = np.where(child, rng.integers(0, 16, N), rng.integers(18, 86, N))
    income = np.where(child, np.nan, np.round(rng.lognormal(10, 0.5, N)))
    return pd.DataFrame(
        {
            "unit": [f"p{i:05d}" for i in range(N)],
            "period": 1,
            "region": rng.choice(["a", "b", "c"], N),
            "kind": np.where(family, "family", "adults"),
            "age": age.astype(float),
            "income": income,
        }
    )


OUTCOMES = {
    "kind": {"type": "categorical", "levels": ["family", "adults"]},
    "age": {"type": "count", "min": 0, "scale": "identity"},
    "income": {"type": "continuous", "min": 0},
}


def _config(seed: int) -> SynthConfig:
    return replica_config(OUTCOMES, seed)


def _synth(resp: pd.DataFrame, seed: int) -> pd.DataFrame:
    return replica(resp, _config(seed))


def _child_share(f: pd.DataFrame) -> pd.Series:
    return (f["age"].astype(float) < 16).groupby(f["kind"]).mean()


def test_the_cut_is_found_where_the_later_item_is_skipped():
    w = _world(1)
    raw = {"age": w["age"].to_numpy(), "income": w["income"].to_numpy()}
    free = {k: np.ones(N, dtype=bool) for k in raw}
    specs = {o.name: o for o in _config(1).outcomes}
    cuts = structure.skip_splits(["age", "income"], specs, raw, free)
    # the youngest age with an income: nobody in the world is 16 or 17
    assert [(k.column, k.kind, k.bound) for k in cuts["age"]] == [("age", "below", 18.0)]
    indep = {"age": raw["age"], "income": np.where(np.arange(N) % 5 == 0, np.nan, 1.0)}
    assert structure.skip_splits(["age", "income"], specs, indep, free) == {}


def test_the_share_skipped_follows_the_earlier_answers(monkeypatch):
    """Real: 60% of family members and no adults-only member are under 16. With the cut the
    synthetic shares are within 0.05 of that, no child has an income and no adult lacks one.
    The residuals' distribution by location (``residuals.Texture``: bimodal ages where the
    location lies between a child's and an adult's) keeps the share too; without either (no
    cut, one pooled residual distribution: a unimodal continuous part) the family share misses
    by more than 0.1."""
    real = _world(2)
    syn = _synth(real, 2)
    share = _child_share(syn)
    assert abs(share["family"] - _child_share(real)["family"]) < 0.05
    assert share["adults"] < 0.01
    young = syn["age"].astype(float) < 18  # the cut: the youngest respondent with an income
    assert not syn.loc[young, "income"].notna().any()
    assert syn.loc[~young, "income"].notna().all()
    monkeypatch.setattr(structure, "skip_splits", lambda *a: {})
    assert abs(_child_share(_synth(real, 2))["family"] - _child_share(real)["family"]) < 0.05
    monkeypatch.setattr(residuals, "MAX_BINS", 1)
    flat = _child_share(_synth(real, 2))
    assert abs(flat["family"] - _child_share(real)["family"]) > 0.1


def test_a_count_floor_is_not_a_pile():
    """Ages are 0-15 and 18-85, none piles up: the share of synthetic records at age 0 is
    within 0.02 of the real share (a clip at the floor put the lower tail there)."""
    real = _world(3)
    syn = _synth(real, 3)
    at0 = (syn["age"].astype(float) == 0).mean()
    assert abs(at0 - (real["age"] == 0).mean()) < 0.02
