"""The real-population SAE benchmark's parts (scripts/eval/eval_real_sae.py), quickly: the design,
the scoring, the holdout rule it copies from risk_holdout.sql, and one replicate of every
estimator on the Belgian communes, and two dbt builds (Belgian communes, EU-SILC; about 15 s
each) for the back-test's allowance where few cells are supported. The benchmark itself is a
script (minutes per population); its dbt comparison (--dbt) is exercised by running it."""

from __future__ import annotations

import argparse
import sys

import duckdb
import numpy as np
import pandas as pd
import pytest
from harness import ROOT

sys.path.insert(0, str(ROOT / "scripts" / "eval"))
import eval_real_sae as sae


@pytest.fixture(scope="module")
def belgian():
    return sae.belgian()


def test_domains_hold_the_truth(belgian):
    dom = sae.domains(belgian)
    assert len(dom) == 81 and dom["N"].sum() == 589
    u = belgian.units
    one = dom.iloc[5]
    inside = u[u.cell_id == one.cell_id]
    assert one.true_mean == pytest.approx(inside.avg_income.mean())
    assert one.true_share == pytest.approx(inside.rich.mean())
    assert u.rich.mean() == pytest.approx(0.5, abs=0.01)


def test_stratified_draw(belgian):
    s = sae.draw(belgian, 11)
    N_h = belgian.units.Province.value_counts()
    n_h = s.Province.value_counts()
    assert (n_h == np.maximum(2, np.round(0.2 * N_h)).astype(int).loc[n_h.index]).all()
    w = s.groupby("Province").analysis_weight.sum()
    assert np.allclose(w, N_h.loc[w.index].to_numpy(), rtol=1e-12)
    assert s.unit_id.is_unique
    assert sae.draw(belgian, 11).equals(s) and not sae.draw(belgian, 12).equals(s)


def test_holdout_is_the_warehouse_rule(belgian, monkeypatch):
    """Where the project withholds the disclosure-risk holdout from the synthesizer, synth_inputs
    drops the units risk_holdout.sql withholds: outside the synthesized cells, md5(seed|unit_id)
    below the share (computed here by DuckDB, as the model does); otherwise it keeps them all."""
    s = sae.draw(belgian, 3).assign(_synthesized=lambda d: d.cell_id.str.endswith("12k+"))
    monkeypatch.setattr(sae, "holdout_in_synthesis", lambda: True)
    kept = sae.synth_inputs(belgian, s, 77)
    with duckdb.connect() as con:
        con.register("s", s[["unit_id", "_synthesized"]])
        held = con.sql(
            "select unit_id from s where not _synthesized "
            "and substr(md5('77|' || unit_id), 1, 8) < '80000000'"
        ).df()
    assert set(s.unit_id) - set(kept.unit_id) == set(held.unit_id)
    assert 0 < len(held) < (~s._synthesized).sum()
    assert "_synthesized" not in kept.columns
    monkeypatch.setattr(sae, "holdout_in_synthesis", lambda: False)
    assert sae.synth_inputs(belgian, s, 77).equals(s.drop(columns="_synthesized"))


def test_score_by_class():
    rows = pd.DataFrame(
        {
            "cell_id": ["a", "b", "c", "a"],
            "target": "mean",
            "method": "m1",
            "estimate": [1.0, 2.0, np.nan, 4.0],
            "ci_low": [0.0, 2.5, np.nan, np.nan],
            "ci_high": [2.0, 3.0, np.nan, np.nan],
            "n": [0, 1, 0, 4],
            "truth": [1.5, 2.0, 9.0, 3.0],
        }
    )
    sc = sae.score(rows).set_index("cls")
    assert sc.loc["all", "rows"] == 3 and sc.loc["all", "rmse"] == pytest.approx(np.sqrt(1.25 / 3))
    assert sc.loc["all", "coverage"] == pytest.approx(0.5)  # a covered, b not, the last no interval
    assert sc.loc["all", "width"] == pytest.approx(1.25)
    assert sc.loc["0", "rows"] == 1 and sc.loc["3-5", "rmse"] == pytest.approx(1.0)
    share = sae.score(rows.assign(target="share", truth=0.5, ci_low=-1.0, ci_high=2.0))
    assert (share["width"].dropna() == 1.0).all()  # measured within [0, 1]


def test_one_replicate_every_estimator(belgian):
    a = argparse.Namespace(seed=5, m=3, n_mc=5, dbt=0)
    dom = sae.domains(belgian)
    rows, est = sae.replicate(belgian, dom, 0, a)
    got = rows.groupby(["method", "target"]).cell_id.nunique()
    for method in ("fay_herriot", "surveysynth", "unit_level"):
        assert (got.loc[method] == 81).all(), method
    assert len(rows[(rows.method == "direct") & rows.estimate.notna()].cell_id.unique()) == int(
        (rows.drop_duplicates("cell_id").n > 0).sum()
    )
    ours = rows[rows.method == "surveysynth"]
    assert ours.estimate.notna().all() and (ours.ci_low <= ours.ci_high).all()
    assert set(est.cell_role) <= {"completed", "observed"} and (est.m == 3).all()
    again, _ = sae.replicate(belgian, dom, 0, a)
    pd.testing.assert_frame_equal(rows, again)


def test_survey_without_supported_cells_measures_an_allowance_by_emptying_sparse_ones(
    belgian, tmp_path
):
    """The Belgian communes through dbt: no cell has the 10 respondents of the supported class, so
    the back-test empties sparse cells with 2+ respondents (a group per replicate, about a tenth of
    the respondents at most) and measures the allowance of size 0; every completed cell, with
    respondents or not, then carries that allowance: B = s scale sqrt(bias^2 + excess_var)."""
    sample, bt, allow, de = _built(belgian, tmp_path)
    assert len(bt) and (bt.n_thinned == 0).all() and bt.direct_estimate.isna().all()
    assert bt.n_full.min() >= 2 and bt.full_sample_se.notna().all()
    per_cell = bt.drop_duplicates(["replicate", "cell_id", "wave"])
    per_cell = per_cell.groupby(["replicate", "cell_id"]).n_full.sum()
    assert per_cell.groupby("replicate").sum().max() <= 0.1 * len(sample) + per_cell.max()
    assert set(allow.n_thinned) == {0} and (allow.n_cells >= 20).all()
    assert (de.support_n > 0).sum() > 50 and (de.support_n == 0).sum() > 5
    _every_cell_takes_size_zero(de, allow)


def _built(pop, tmp_path):
    """One dbt build of a sample of ``pop`` (m = 3): the sample, backtest_results,
    augmented_error_allowance and the completed cells of domain_estimates with their respondents
    (support_n)."""
    seed = sae.rep_seed(20261206, 0)
    sample = sae.draw(pop, seed)
    db = sae.dbt_build(pop, sample, 3, seed, tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        bt = con.sql("select * from backtest_results").df()
        allow = con.sql("select * from augmented_error_allowance").df()
        de = con.sql(
            "select d.*, s.n_respondents as support_n from domain_estimates d join cell_support s"
            f" using ({', '.join(pop.dims)}, wave) where d.domain_level = 'cell'"
            " and d.n_synthetic > 0 and d.augmented_estimate is not null"
        ).df()
        hajek = con.sql(
            "select d.direct_estimate, e.estimate from domain_estimates d join direct_estimates e"
            " using (domain_level, cell_id, wave, indicator) where d.domain_level = 'cell'"
            f" and e.measure = 'mean' and d.indicator = '{pop.y}' and d.direct_estimate is not null"
        ).df()
    if pop.ratio is None:  # an outcome without a ratio auxiliary: the direct mean is the Hajek
        assert len(hajek) > 20
        np.testing.assert_allclose(hajek.direct_estimate, hajek.estimate, rtol=1e-9)
    return sample, bt, allow, de


def _every_cell_takes_size_zero(de: pd.DataFrame, allow: pd.DataFrame) -> None:
    allow = allow[allow.n_thinned == 0].set_index("indicator")
    for r in de.itertuples():
        a = allow.loc[r.indicator]
        scale = 1.0 if "=" in r.indicator else abs(r.augmented_estimate)
        want = r.model_share_augmented * scale * np.sqrt(a.bias_mean**2 + a.excess_var)
        assert r.augmented_bias_allowance == pytest.approx(want, rel=1e-6, abs=1e-12)


def test_an_allowance_measured_on_fewer_than_five_cells_is_not_used(tmp_path):
    """EU-SILC persons through dbt: this sample has a single supported cell, so sizes 2, 3 and 5
    are measured on one cell (its error, e.g. a "bias" of a quarter of the mean, is no allowance);
    domain_estimates uses only sizes measured on 5 cells or more, here size 0 of the emptied
    sparse cells, for every completed cell."""
    _, _, allow, de = _built(sae.eusilc(), tmp_path)
    few = allow[allow.n_thinned > 0]
    assert len(few) and (few.n_cells < 5).all()
    assert (allow.loc[allow.n_thinned == 0, "n_cells"] >= 5).all()
    assert (de.support_n >= 2).sum() > 20
    _every_cell_takes_size_zero(de, allow)
