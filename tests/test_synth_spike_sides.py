"""A spike inside an answer's range (a tax adjustment of 0 between refunds and payments) cuts
its continuous part in two: the side is a logit of the earlier answers and the value is
drawn within its side (structure.spike_split), so the share of records on each side follows
the predictors. One location-scale model could not put a mass on each side of the spike."""

from __future__ import annotations

import numpy as np
import pandas as pd
from replica_worlds import replica, replica_config

from surveysynth.contract.inputs import support_table
from surveysynth.synthesis import api, structure

N = 3000
OUTCOMES = {
    "owner": {"type": "binary"},
    "adjustment": {"type": "continuous"},
}


def _world(seed: int) -> pd.DataFrame:
    """Half the persons have no adjustment (0). Of the others, 30% of owners pay (about
    3,000) and 5% of the rest; the others are refunded (about 150): the sides differ in
    share by owner and in size."""
    rng = np.random.default_rng(seed)
    owner = rng.random(N) < 0.4
    zero = rng.random(N) < 0.5
    pays = np.where(owner, rng.random(N) < 0.3, rng.random(N) < 0.05)
    paid, refund = rng.lognormal(8, 1.0, N), rng.lognormal(5, 0.5, N)
    adj = np.where(zero, 0.0, np.where(pays, np.round(paid), -np.round(refund)))
    return pd.DataFrame(
        {
            "unit": [f"p{i:05d}" for i in range(N)],
            "period": 1,
            "region": rng.choice(["a", "b", "c"], N),
            "owner": owner.astype("int64"),
            "adjustment": adj,
        }
    )


def _pay_share(f: pd.DataFrame) -> pd.Series:
    """Share paying among the persons with an adjustment, by owner."""
    x = f["adjustment"].astype(float)
    return (x[x != 0] > 0).groupby(f["owner"].astype(int)[x != 0]).mean()


def test_the_cut_is_at_an_inner_spike_with_both_sides_answered():
    x = np.array([-3.0] * 25 + [0.0] * 50 + [2.0] * 30 + [5.0] * 40)
    off = np.where(x == 0, np.nan, x)  # the answers off the spike
    assert structure.spike_split("y", off, (0.0,)) == (
        structure.Constraint("y", "below", 1.0, bound=0.0),
    )
    # a spike at the edge, or with too few answers on one side, is no cut
    assert structure.spike_split("y", np.where(x < 0, np.nan, off), (0.0,)) == ()
    few = np.array([-3.0] * 19 + [4.0] * 80)
    assert structure.spike_split("y", few, (0.0,)) == ()
    # of two inner spikes, the one whose smaller side is larger
    two = np.array([-1.0] * 50 + [1.0] * 30 + [3.0] * 20)
    cut = structure.spike_split("y", two, (2.0, 0.0))
    assert cut[0].bound == 0.0


def test_the_side_of_the_spike_follows_the_earlier_answers(monkeypatch):
    """Real: 29% of owners with an adjustment pay, 5.5% of the others. With the cut the
    synthetic shares are within 0.06 of the real ones (0.255 and 0.049); without it (one
    continuous part across the spike) they miss by more than 0.1 (0.864 and 0.122)."""
    real = _world(4)
    cfg = replica_config(OUTCOMES, 4)
    want = _pay_share(real)
    got = _pay_share(replica(real, cfg))
    assert (got - want).abs().max() < 0.06, (got, want)
    monkeypatch.setattr(structure, "spike_split", lambda *a: ())
    flat = _pay_share(replica(real, cfg))
    assert (flat - want).abs().max() > 0.1, (flat, want)


def test_a_skip_cut_takes_precedence_over_a_spike_cut():
    """One cut per answer: where a later item is skipped beyond a value of the answer (no
    refund recorded above 500), that skip cut is modelled and the inner spike is not cut."""
    real = _world(5)
    adj = real["adjustment"].astype(float)
    real["refund"] = np.where(adj > 500, np.nan, np.round(np.abs(adj) / 10))
    outcomes = {**OUTCOMES, "refund": {"type": "count", "min": 0}}
    cfg = replica_config(outcomes, 5)
    tot = real.groupby("region").size().rename("n_population").reset_index()
    model = api.fit_model(real, None, support_table(real, cfg, totals=tot), cfg)
    splits = {om.spec.name: om.splits for om in model.spec.models}
    # the cut sits at the largest adjustment with a refund recorded (at most 500)
    assert [k.kind for k in splits["adjustment"]] == ["above"]
    assert 400 < splits["adjustment"][0].bound <= 500
    plain = replica_config(OUTCOMES, 5)
    fitted = api.fit_model(
        real[["unit", "period", "region", "owner", "adjustment"]],
        None,
        support_table(real, plain, totals=tot),
        plain,
    )
    alone = {om.spec.name: om.splits for om in fitted.spec.models}
    assert [(k.kind, k.bound) for k in alone["adjustment"]] == [("below", 0.0)]
