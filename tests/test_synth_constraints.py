"""A component's structural zeros and its constant on the remaining rows: the constant covers only
the rows no structural zero fixes (fit._targets; the sampler applies constraints in order, a later
one overriding an earlier where it holds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from replica_worlds import replica, replica_config

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import support_table
from surveysynth.synthesis.api import synthesize

# kind a: always exactly one employee; kind c: never; kind b: too few rows to call a zero, and
# none has one employee (the constant 0 of the rows left free)
ROWS = {"a": 40, "b": 5, "c": 100}


def _world(seed: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    kind = np.repeat(list(ROWS), list(ROWS.values()))
    staff = np.where(kind == "a", 1, np.round(np.exp(rng.normal(3.0, 0.6, kind.size)) + 2))
    n = kind.size
    responses = pd.DataFrame(
        {
            "unit": [f"u{i:04d}" for i in range(n)],
            "period": 1,
            "region": np.tile(["r0", "r1", "r2"], n // 3 + 1)[:n],
            "weight": 1.0,
            "kind": kind,
            "staff": pd.array(staff.astype(int), dtype="Int64"),
        }
    )
    frame = pd.DataFrame(
        {"unit": [f"f{i:04d}" for i in range(300)], "region": np.repeat(["r0", "r1", "r2"], 100)}
    )
    frame = pd.concat([frame, responses[["unit", "region"]]], ignore_index=True)
    config = SynthConfig.from_vars(
        {
            "ss_unit_id": "unit",
            "ss_wave": "period",
            "ss_cell_dims": ["region"],
            "ss_design_weight": "weight",
            "ss_outcomes": {
                "kind": {"type": "categorical", "levels": list(ROWS)},
                "staff": {"type": "count", "min": 0},
            },
            "ss_seed": 3,
            "ss_synth_mode": "replica",
        }
    )
    support = support_table(responses, config, frame=frame)
    return {"responses": responses, "frame": frame, "support": support, "config": config}


def test_structural_one_is_not_overridden_by_the_free_rows_constant():
    w = _world()
    syn = synthesize(w["responses"], w["frame"], w["support"], w["config"])
    a = syn[syn["kind"] == "a"]
    assert len(a) > 20
    assert (a["staff"] == 1).mean() > 0.9, a["staff"].value_counts().head()
    assert (syn.loc[syn["kind"] == "c", "staff"] != 1).all()


# ------------------------------------------------------------------ zeros on a derived answer
def _derived_world(seed: int = 8) -> pd.DataFrame:
    """``code`` has 40 levels, the last five rare (6 rows each); ``band`` = 1 + code // 5 is an
    exact function of it, so it is copied through the map and is no predictor; ``flag`` is 1
    for half the rows but never where band is 8 (codes 35-39): 15 expected there, 3 per code,
    too few to call a zero on any one code."""
    rng = np.random.default_rng(seed)
    code = np.concatenate([np.repeat(np.arange(35), 60), np.repeat(np.arange(35, 40), 6)])
    band = 1 + code // 5
    flag = np.where(band == 8, 0, rng.random(code.size) < 0.5).astype(np.int64)
    n = code.size
    return pd.DataFrame(
        {
            "unit": [f"u{i:04d}" for i in range(n)],
            "period": 1,
            "region": np.tile(["r0", "r1", "r2"], n // 3 + 1)[:n],
            "code": [f"c{c:02d}" for c in code],
            "band": band,
            "flag": flag,
        }
    )


def _derived_replica(df: pd.DataFrame) -> pd.DataFrame:
    outcomes = {
        "code": {"type": "categorical", "levels": [f"c{c:02d}" for c in range(40)]},
        "band": {"type": "count", "min": 1},
        "flag": {"type": "binary"},
    }
    return replica(df, replica_config(outcomes, 4).with_(m=4))


def _flagged_in_band_8(syn: pd.DataFrame) -> tuple[int, int]:
    top = syn["band"].astype(float) == 8
    return int(top.sum()), int((top & (syn["flag"].astype(float) == 1)).sum())


def test_a_derived_answers_range_fixes_a_zero():
    rows, flagged = _flagged_in_band_8(_derived_replica(_derived_world()))
    assert rows >= 40  # 4 implicates of about 30 records
    assert flagged == 0


def test_without_the_derived_answer_the_zero_is_lost(monkeypatch):
    """The planted mutation: the zero search does not see the derived answer."""
    from surveysynth.synthesis import structure

    search = structure.structural_constraints

    def blind(event, rows, sources, raw):
        return search(event, rows, [s for s in sources if s.column != "band"], raw)

    monkeypatch.setattr(structure, "structural_constraints", blind)
    rows, flagged = _flagged_in_band_8(_derived_replica(_derived_world()))
    assert rows >= 40 and flagged >= 3


# ------------------------------------------------ zeros of a continuation step among all answers
#: per region, the shares of the levels a / b / c / d of ``size``: region r2 has no b and no d,
#: and so few answers past a (10 of 200) that the steps' own tests (among the answers that reach
#: them) expect 5 of each there, below the rule's 7; among all of r2's answers 60 b and 30 d are
#: expected
SHARES = {"r0": (0.4, 0.3, 0.15, 0.15), "r1": (0.4, 0.3, 0.15, 0.15), "r2": (0.95, 0.0, 0.05, 0.0)}


def _step_world(per_region: int = 200) -> pd.DataFrame:
    parts = []
    for region, shares in SHARES.items():
        counts = np.round(np.array(shares) * per_region).astype(int)
        parts.append(pd.DataFrame({"region": region, "size": np.repeat(list("abcd"), counts)}))
    df = pd.concat(parts, ignore_index=True)
    return df.assign(unit=[f"u{i:04d}" for i in range(len(df))], period=1)


def _r2_levels(seed: int = 6) -> pd.Series:
    cfg = replica_config({"size": {"type": "categorical", "levels": list("abcd")}}, seed)
    syn = replica(_step_world(), cfg.with_(m=5))
    return syn.loc[syn["region"] == "r2", "size"].value_counts()


def test_a_step_keeps_the_zeros_its_values_have_among_all_answers():
    """fit._targets checks each continuation step's values among every answer as well as among
    the answers that reach the step (structure.with_marginal_zeros): r2's records hold neither b
    (the middle step's own value: probability 0) nor d (the last level, the last step's
    complement: the step's c has probability 1)."""
    got = _r2_levels()
    assert got.sum() == 5 * 200
    assert got.get("b", 0) == 0 and got.get("d", 0) == 0, got.to_dict()
    assert got.get("c", 0) > 0  # c is not a zero: it is drawn


def test_without_the_check_among_all_answers_the_zeros_are_lost(monkeypatch):
    """The planted mutation: each step is checked among the answers that reach it only."""
    from surveysynth.synthesis import structure

    monkeypatch.setattr(structure, "with_marginal_zeros", lambda cons, *a: cons)
    got = _r2_levels()
    assert got.get("b", 0) + got.get("d", 0) >= 5, got.to_dict()
