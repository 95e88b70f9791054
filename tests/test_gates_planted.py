"""Planted failures fail their gate at the demo size, judged by the gates' library functions on
the session's demo build's own records (tests/demo_builds.py: back-test off, register values
marked; the table gates and the dbt plumbing of every gate are planted end to end in
test_release_gates.py; tests/test_gates_small.py does both at about 200 responses):

- fidelity: every outcome shuffled across the records, answers shuffled independently within
  each cell (the dependence between answers and on the register broken), and whole answer
  vectors shuffled within each cell (a synthesizer blind to the register auxiliaries);
- disclosure: verbatim copies and near-copies of respondents, in the risk fit's records and in
  the released ones."""

from __future__ import annotations

import pytest
from harness import project_vars

from surveysynth.checks.fidelity_gate import fidelity_gate
from surveysynth.checks.risk_gate import disclosure_gate
from surveysynth.checks.sabotage import sabotage

OUTCOMES = [
    "trading_status",
    "turnover_change",
    "turnover",
    "employees",
    "cash_reserves",
    "applied_finance",
]
TABLES = [
    "stg_responses",
    "synthesis_responses",
    "calibrated_weights",
    "risk_holdout",
    "risk_synthetic_microdata",
    "synthetic_microdata",
]


@pytest.fixture(scope="module")
def demo(demo_release):
    """The session's demo build (tests/demo_builds.py: back-test off, register values marked)."""
    res = demo_release.res
    return (
        project_vars(**demo_release.vars),
        res,
        {t: res.query(f"select * from {t}") for t in TABLES},
    )


def test_honest_demo_passes_both_gates(demo):
    _, res, _ = demo
    for model, gate in (
        ("fidelity_metrics", "fidelity_gate"),
        ("disclosure_metrics", "disclosure_attacks"),
    ):
        m = res.query(f"select * from {model}")
        assert m.passed.all(), m[~m.passed]
        assert (m.loc[m.metric == gate, "status"] == "pass").all()


@pytest.mark.parametrize("how", ["shuffle_columns", "break_dependence", "ignore_auxiliaries"])
def test_planted_fidelity_failures_fail(demo, how):
    v, _, t = demo
    syn = t["synthetic_microdata"]
    bad = sabotage(how, syn[syn.implicate == 1], OUTCOMES, seed=3)
    rep = fidelity_gate(v, t["synthesis_responses"], t["calibrated_weights"], bad)
    assert rep.loc[rep.metric == "fidelity_gate", "status"].iloc[0] == "fail"
    failed = {f.removesuffix("_max") for f in rep.loc[rep.status == "fail", "family"]}
    want = {"ignore_auxiliaries": "register_dependence", "break_dependence": "register_dependence"}
    assert want.get(how, "dependence_contingency") in failed, rep[rep.status == "fail"]


@pytest.mark.parametrize("how", ["copy_training", "near_copies"])
def test_planted_copies_fail_the_disclosure_gate(demo, how):
    v, _, t = demo
    roles, r = t["risk_holdout"], t["stg_responses"]
    seen = r[r["_row_id"].isin(roles.loc[roles.risk_role == "train", "_row_id"])]
    risk = sabotage(how, t["risk_synthetic_microdata"], OUTCOMES, responses=seen, seed=3)
    syn = t["synthetic_microdata"]
    released = sabotage(how, syn[syn.implicate == 1], OUTCOMES, responses=r, seed=3)
    rep = disclosure_gate(v, r, roles, risk, released)
    failed = set(rep.loc[rep.status == "fail", "metric"])
    assert {"disclosure_attacks", "dcr_share", "membership_auc", "near_copy_rate"} <= failed
    if how == "copy_training":
        assert "informative_match_rate" in failed
