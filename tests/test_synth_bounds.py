"""Structural bounds of numeric answers given earlier answers (structure.value_bounds) and the
truncated draw of the continuous part (sample._continuous_draw): synthetic records never show a
value that the respondents never show for their level of an earlier answer, where chance cannot
explain the gap; a count's spike values are not also produced by its continuous part."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from replica_worlds import replica, replica_config

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import support_table
from surveysynth.synthesis import fit, sample, structure
from surveysynth.synthesis.api import synthesize
from surveysynth.synthesis.features import learn_discrete, learn_numeric
from surveysynth.synthesis.sample import _off_spikes

N = 1500


def _world(seed: int) -> pd.DataFrame:
    """Persons: a household type (0: with children, 1: adults only), an age that is >= 18 for
    adults-only households and spread from 0 for the others, a number of children (0-4), and
    hours worked that never exceed 20 with three children or more but go up to 60 otherwise."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, N)
    age = np.where(kind == 1, 18 + rng.exponential(10.0, N), rng.gamma(2.0, 12.0, N))
    age = np.round(np.minimum(age, 95))
    kids = rng.integers(0, 5, N)
    hours = np.where(kids >= 3, rng.uniform(0, 20, N), rng.uniform(0, 60, N))
    return pd.DataFrame(
        {
            "unit": [f"p{i:05d}" for i in range(N)],
            "period": 1,
            "region": rng.choice(["a", "b", "c"], N),
            "kind": np.where(kind == 1, "adults", "family"),
            "age": age,
            "kids": kids,
            "hours": np.round(hours, 1),
        }
    )


OUTCOMES = {
    "kind": {"type": "categorical", "levels": ["family", "adults"]},
    "age": {"type": "count", "min": 0, "scale": "identity"},
    "kids": {"type": "count", "min": 0, "scale": "identity"},
    "hours": {"type": "continuous", "min": 0},
}


def _config(seed: int) -> SynthConfig:
    return replica_config(OUTCOMES, seed)


def _synth(resp: pd.DataFrame, seed: int) -> pd.DataFrame:
    return replica(resp, _config(seed))


def _violations(f: pd.DataFrame, real: pd.DataFrame) -> tuple[int, int]:
    """Records beyond the respondents' own bounds: adults younger than the youngest adult,
    parents of three or more working more than any such respondent."""
    age, hours = f["age"].astype(float), f["hours"].astype(float)
    many = f["kids"].astype(float) >= 3
    adult_min = real.loc[real["kind"] == "adults", "age"].min()
    many_max = real.loc[real["kids"] >= 3, "hours"].max()
    adults = (f["kind"] == "adults") & (age < adult_min)
    return int(adults.sum()), int((many & (hours > many_max)).sum())


@pytest.mark.parametrize("seed", [1, 2])
def test_records_keep_structural_bounds(seed, monkeypatch):
    resp = _world(seed)
    out = _synth(resp, seed)
    assert _violations(out, resp) == (0, 0)
    # the same fit without structural bounds breaks both (the test can fail)
    monkeypatch.setattr(structure, "value_bounds", lambda *a, **k: ())
    adults, many = _violations(_synth(resp, seed), resp)
    assert adults > 10 and many > 10


def test_bounds_found_for_a_level_and_a_count_value():
    resp = _world(3)
    kind = (resp["kind"] == "adults").to_numpy().astype(np.int64)
    age, kids = (resp[c].to_numpy(dtype=float) for c in ("age", "kids"))
    raw = {"kind": kind, "age": age, "kids": kids}
    specs = {o.name: o for o in _config(3).outcomes}
    w, every = np.ones(N), np.ones(N, dtype=bool)
    srcs = [
        learn_discrete("kind", specs["kind"], every),
        learn_numeric("age", "numeric", age, w, outcome=specs["age"]),
        learn_numeric("kids", "numeric", kids, w, outcome=specs["kids"]),
    ]
    found = structure.value_bounds(age, every, srcs[:1], raw)
    adults = [b for b in found if b.where.column == "kind" and b.where.level == 1]
    assert [(b.side, b.value) for b in adults] == [("lo", float(age[kind == 1].min()))]
    hours = resp["hours"].to_numpy(dtype=float)
    found = structure.value_bounds(hours, every, srcs, raw)
    assert {(b.where.column, b.where.kind, b.where.bound, b.side) for b in found} == {
        ("kids", "equal", 3.0, "hi"),
        ("kids", "equal", 4.0, "hi"),
    }  # age takes more than MAX_BOUND_LEVELS values: not a source of bounds


@pytest.mark.parametrize("seed", range(20))
def test_no_bound_without_structure(seed):
    """A small level and a count's values independent of the answer: no bound is taken (the
    zero-beyond-chance rule), over 20 seeds."""
    rng = np.random.default_rng(seed)
    n = 600
    lev = (rng.random(n) < 0.05).astype(np.int64)  # a level of about 30 rows
    x = rng.poisson(2.0, n).astype(float)
    y = rng.lognormal(3.0, 1.0, n)
    specs = {o.name: o for o in _config(seed).outcomes}
    srcs = [
        learn_discrete("kind", specs["kind"], np.ones(n, dtype=bool)),
        learn_numeric("kids", "numeric", x, np.ones(n), outcome=specs["kids"]),
    ]
    assert structure.value_bounds(y, np.ones(n, dtype=bool), srcs, {"kind": lev, "kids": x}) == ()


def test_off_spikes_moves_to_the_nearer_side_of_a_run():
    y = np.array([11.6, 12.4, 12.9, 13.1, 13.6, 14.4, 15.2, 9.0, 18.2, 0.3])
    k = _off_spikes(np.round(y), y, (12.0, 13.0, 14.0, 18.0, 0.0), (0.0, 18.0))
    # 18 is the largest answer and 0 the smallest: their draws go inward
    assert k.tolist() == [11, 11, 11, 15, 15, 15, 15, 9, 17, 1]


def test_count_spike_share_kept():
    """A count whose most common value sits inside its continuous range (12 years of schooling):
    the continuous part no longer adds draws that round onto it."""
    rng = np.random.default_rng(5)
    n = 6000
    edu = np.where(rng.random(n) < 0.4, 12, np.round(rng.normal(12, 3, n)).clip(0, 20))
    resp = pd.DataFrame(
        {"unit": [f"u{i}" for i in range(n)], "period": 1, "region": rng.choice(["a", "b"], n)}
    ).assign(edu=edu)
    cfg = SynthConfig.from_vars(
        {
            "ss_unit_id": "unit",
            "ss_wave": "period",
            "ss_cell_dims": ["region"],
            "ss_outcomes": {"edu": {"type": "count", "min": 0, "scale": "identity"}},
            "ss_synth_mode": "replica",
            "ss_synth_m": 1,
            "ss_seed": 5,
        }
    )
    tot = resp.groupby("region").size().rename("n_population").reset_index()
    out = synthesize(resp, None, support_table(resp, cfg, totals=tot), cfg)
    real, syn = np.mean(edu == 12), np.mean(out["edu"].astype(float) == 12)
    se = np.sqrt(real * (1 - real) * (1 / n + 1 / len(out)))
    assert abs(syn - real) < 3 * se


def _cell_world(seed: int, n: int = 600) -> pd.DataFrame:
    """Three regions of ``n`` persons: region a's benefit never passes 100 (a cap of its own;
    the others' reach the thousands) and a's persons never rent social housing (30% elsewhere)."""
    rng = np.random.default_rng(seed)
    region = np.repeat(["a", "b", "c"], n)
    in_a = region == "a"
    benefit = np.where(in_a, np.minimum(rng.lognormal(3.5, 1.0, 3 * n), 100.0), 0.0)
    benefit = np.where(in_a, benefit, rng.lognormal(5.0, 1.0, 3 * n))
    social = ~in_a & (rng.random(3 * n) < 0.3)
    return pd.DataFrame(
        {
            "unit": [f"p{i:05d}" for i in range(3 * n)],
            "period": 1,
            "region": region,
            "tenure": np.where(social, "social", "other"),
            "benefit": np.round(benefit, 2),
        }
    )


CELL_OUTCOMES = {
    "tenure": {"type": "categorical", "levels": ["other", "social"]},
    "benefit": {"type": "continuous", "min": 0},
}


def _cell_violations(f: pd.DataFrame, real: pd.DataFrame) -> tuple[int, int]:
    a = f["region"] == "a"
    cap = real.loc[real["region"] == "a", "benefit"].max()
    return int((a & (f["tenure"] == "social")).sum()), int((a & (f["benefit"] > cap)).sum())


@pytest.mark.parametrize("seed", [1, 2])
def test_records_keep_their_cells_structural_zeros_and_bounds(seed, monkeypatch):
    """A cell's own zero (a category its many respondents never give) and bound (a value they
    never pass while the other cells' answers pass it in hundreds of rows) hold in its records;
    without the cell as a searched source, the pooled model breaks both."""
    resp = _cell_world(seed)
    cfg = replica_config(CELL_OUTCOMES, seed)
    assert _cell_violations(replica(resp, cfg), resp) == (0, 0)
    monkeypatch.setattr(fit, "_searched", lambda om: [s for s in om.sources if s.kind != "score"])
    social, above = _cell_violations(replica(resp, cfg), resp)
    assert social > 0 and above > 0


def test_cell_bounds_need_evidence():
    """Cells drawn alike (600 rows each, lognormal answers): no cell takes a bound of its own,
    over 20 seeds; the closed-form chance agrees with the level-by-level rule."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        codes = np.repeat(np.arange(3, dtype=np.int64), 600)
        y = rng.lognormal(3.0, 1.0, codes.size)
        assert structure._cell_bounds(y, codes, "c") == []
    y = np.where(codes == 0, np.minimum(y, 20.0), y)
    by_cell = structure._cell_bounds(y, codes, "c")
    by_level = structure._level_bounds(y, codes, "c", "level")
    assert by_cell == by_level == [structure.ValueBound(by_cell[0].where, "hi", 20.0)]


def _floor_world(seed: int, n: int = 1500) -> pd.DataFrame:
    """An income that 40% of persons have at 0 and the rest above it (no minimum declared, as
    for a table where some other sample shows a loss), and weekly hours top-coded at 60 (a
    third of region c's answers, whose usual hours are near it)."""
    rng = np.random.default_rng(seed)
    income = np.where(rng.random(n) < 0.4, 0.0, np.round(rng.gamma(2.0, 800.0, n), 2) + 1.0)
    region = rng.choice(["a", "b", "c"], n)
    usual = pd.Series(region).map({"a": 35.0, "b": 45.0, "c": 56.0}).to_numpy()
    hours = np.minimum(np.round(rng.normal(usual, 8.0), 1), 60.0)
    return pd.DataFrame(
        {
            "unit": [f"p{i:05d}" for i in range(n)],
            "period": 1,
            "region": region,
            "hours": hours,
            "income": income,
        }
    )


FLOOR_OUTCOMES = {
    "hours": {"type": "continuous", "min": 0},
    "income": {"type": "continuous"},
}


def _beyond(f: pd.DataFrame) -> tuple[int, int]:
    return int((f["income"].astype(float) < 0).sum()), int((f["hours"].astype(float) > 60).sum())


@pytest.mark.parametrize("seed", [1, 2])
def test_a_spike_at_the_smallest_or_largest_answer_bounds_the_draws(seed, monkeypatch):
    """No negative income where the answers pile at 0 and none is below; no hours above their top
    code. Without the rule (the declared bounds only), the range's padding draws both."""
    resp = _floor_world(seed)
    cfg = replica_config(FLOOR_OUTCOMES, seed).with_(m=3)
    assert _beyond(replica(resp, cfg)) == (0, 0)

    def declared_only(om):
        o = om.spec
        lo = -np.inf if o.lower is None else o.lower
        return lo + (o.type == "count" and lo in om.spikes), np.inf if o.max is None else o.max

    monkeypatch.setattr(sample, "_support", declared_only)
    below, above = _beyond(replica(resp, cfg))
    assert below > 0 and above > 0


def test_a_top_code_at_the_declared_max_is_a_spike():
    """Hours top-coded at a declared max of 40 (a fifth of the answers sit there): the records
    keep that share at 40 exactly; an outcome constant at its max is drawn at it exactly."""
    resp = _world(3)
    resp["hours"] = np.minimum(resp["hours"], 40.0)
    resp["flat"] = 10.0
    outcomes = {
        **OUTCOMES,
        "hours": {"type": "continuous", "min": 0, "max": 40},
        "flat": {"type": "continuous", "min": 0, "max": 10},
    }
    out = replica(resp, replica_config(outcomes, 3))
    real = float((resp["hours"] == 40).mean())
    syn = float((out["hours"] == 40).mean())
    assert real > 0.15 and abs(syn - real) < 0.05, (real, syn)
    assert (out["flat"] == 10.0).all()
