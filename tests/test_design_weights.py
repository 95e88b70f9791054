"""Base weights: supplied design weights pass through; derived N_h / n_h per stratum; nonresponse
adjustment within classes from the sample, with an empty class collapsed to a coarser one (weight
conserved) or, with no coarser level, failing the build with a message naming the class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from design_fixtures import OTHER_LAYERS_NEUTRAL, build, demo_vars, rel_diff
from harness import farm_vars


def _key(df: pd.DataFrame, cols: list[str]) -> pd.Series:
    if not cols:
        return pd.Series("all", index=df.index)
    k = df[cols[0]].astype(str)
    for c in cols[1:]:
        k = k + "|" + df[c].astype(str)
    return k


def test_supplied_design_weights_pass_through(demo_build, demo_data):
    res, _ = demo_build
    dw = res.query(
        "select unit_id, wave, design_weight, nonresponse_factor, base_weight from design_weights"
    )
    r = pd.read_parquet(demo_data / "responses.parquet")
    m = dw.merge(
        r, left_on=["unit_id", "wave"], right_on=["business_id", "wave"], suffixes=("", "_in")
    )
    assert len(m) == len(r) == len(dw)
    assert rel_diff(m.base_weight, m.design_weight_in) < 1e-12
    assert (m.nonresponse_factor == 1.0).all()
    # no sample configured: no nonresponse classes, n_sampled unknown
    assert res.query("select count(*) as n from nonresponse_adjustment").n[0] == 0


@pytest.fixture(scope="module")
def planted(demo_data, tmp_path_factory):
    """The demo sample and responses with every respondent of one (scotland, sector) class
    removed in wave 1 (and flagged as nonrespondents in the sample)."""
    out = tmp_path_factory.mktemp("nr_planted")
    s = pd.read_parquet(demo_data / "sample.parquet")
    r = pd.read_parquet(demo_data / "responses.parquet")
    w1 = s[(s.wave == 1) & (s.region == "scotland")]
    sector = w1.groupby("sector").size().idxmax()  # the class with the most sampled units
    gone = (r.wave == 1) & (r.region == "scotland") & (r.sector == sector)
    assert gone.sum() > 0
    r = r[~gone]
    s.loc[(s.wave == 1) & (s.region == "scotland") & (s.sector == sector), "responded"] = False
    r.to_parquet(out / "responses.parquet", index=False)
    s.to_parquet(out / "sample.parquet", index=False)
    return out, sector


def _nr_vars(demo_data, planted_dir, collapse):
    return demo_vars(
        demo_data,
        ss_responses=f"file:{planted_dir / 'responses.parquet'}",
        ss_sample=f"file:{planted_dir / 'sample.parquet'}",
        ss_design_weight=None,
        ss_sample_design_weight=None,
        ss_design_strata=["region", "size_band"],
        ss_nonresponse_classes=["region", "sector"],
        ss_nonresponse_collapse=collapse,
    )


def test_derived_weights_and_collapsed_nonresponse_classes(demo_data, planted, tmp_path):
    planted_dir, sector = planted
    res = build(tmp_path, _nr_vars(demo_data, planted_dir, [["region"], []]))
    assert res.ok, res.output[-5000:]

    frame = pd.read_parquet(demo_data / "frame.parquet")
    s = pd.read_parquet(planted_dir / "sample.parquet")
    r = pd.read_parquet(planted_dir / "responses.parquet")
    strata = ["region", "size_band"]
    N_h = frame.groupby(_key(frame, strata)).size()
    s["stratum"] = _key(s, strata)
    n_h = s.groupby(["stratum", "wave"]).size()
    s["d"] = N_h.loc[s.stratum].to_numpy() / n_h.loc[list(zip(s.stratum, s.wave))].to_numpy()
    r["stratum"] = _key(r, strata)
    r["d"] = N_h.loc[r.stratum].to_numpy() / n_h.loc[list(zip(r.stratum, r.wave))].to_numpy()

    # reference: factor = prod over levels of S_k(class) / sum of S_{k-1} over its resolved subclasses
    levels = [["region", "sector"], ["region"], []]
    factor = pd.Series(1.0, index=r.index)
    prev = None
    for k, cols in enumerate(levels):
        s_k = s.assign(c=_key(s, cols)).groupby(["wave", "c"]).d.sum()
        r_k = r.assign(c=_key(r, cols)).groupby(["wave", "c"]).d.sum()
        if k == 0:
            f_k = s_k / r_k.reindex(s_k.index)
        else:
            fine = prev.reset_index()
            fine = fine[fine.resolved]
            fine["c"] = fine.key_parent
            denom = fine.groupby(["wave", "c"]).S.sum()
            f_k = s_k / denom.reindex(s_k.index)
        idx = list(zip(r.wave, _key(r, cols)))
        factor *= f_k.reindex(idx).to_numpy()
        if k + 1 < len(levels):
            sk = s.assign(c=_key(s, cols), p=_key(s, levels[k + 1]))
            prev = sk.groupby(["wave", "c"]).agg(S=("d", "sum"), key_parent=("p", "first"))
            prev["resolved"] = r_k.reindex(prev.index).notna()
    r["base_ref"] = r.d * factor

    dw = res.query("select unit_id, wave, design_weight, base_weight from design_weights")
    m = dw.merge(
        r, left_on=["unit_id", "wave"], right_on=["business_id", "wave"], suffixes=("", "_in")
    )
    assert len(m) == len(r)
    assert rel_diff(m.design_weight, m.d) < 1e-12
    assert rel_diff(m.base_weight, m.base_ref) < 1e-9
    # the sampled weight is carried in full: base weights sum to the population in every wave
    assert rel_diff(dw.groupby("wave").base_weight.sum(), [len(frame)] * dw.wave.nunique()) < 1e-9

    nr = res.query("select * from nonresponse_adjustment")
    planted_row = nr[(nr.level == 0) & (nr.wave == 1) & (nr.class_key == f"scotland|{sector}")]
    assert planted_row.status.tolist() == ["collapsed"]
    assert planted_row.n_respondents.tolist() == [0]
    scot = nr[(nr.level == 1) & (nr.wave == 1) & (nr.class_key == "scotland")]
    assert scot.factor.iloc[0] > 1.0  # the coarser class carries the empty class's weight
    assert set(nr.status) <= {"adjusted", "collapsed"}


def test_empty_class_without_coarser_level_fails_the_build(demo_data, planted, tmp_path):
    planted_dir, sector = planted
    res = build(tmp_path, _nr_vars(demo_data, planted_dir, []))
    assert res.returncode != 0
    assert f"nonresponse class 'scotland|{sector}'" in res.output
    assert "no coarser class is left: add a level to ss_nonresponse_collapse" in res.output
    st = res.statuses()
    assert st["design_weights"] == "skipped"


def test_bad_design_vars_stop_the_run_with_the_var_named(demo_data, tmp_path):
    res = build(
        tmp_path,
        demo_vars(
            demo_data,
            ss_nonresponse_classes=["region"],
            ss_calibration_margins=[["regio"]],
            ss_design_strata=["region", "size_band"],
            ss_variance_collapse=["sector"],
        ),
    )
    assert res.returncode != 0
    assert "var 'ss_nonresponse_classes' needs var 'ss_sample'" in res.output
    assert "var 'ss_calibration_margins': 'regio' is not a cell dimension" in res.output
    assert "var 'ss_variance_collapse': 'sector' is not a strata dimension" in res.output
    assert np is not None


def test_population_totals_only_derive_weights_and_calibrate(tmp_path):
    """No unit frame: N_h from per-cell population totals (ss_population_totals); derived weights
    N_h / n_h, raking to county and crop counts, direct estimates built."""
    rng = np.random.default_rng(5)
    totals = pd.DataFrame(
        [
            (c, k, n)
            for c, k, n in [
                ("alba", "wheat", 50),
                ("alba", "oats", 30),
                ("bute", "wheat", 40),
                ("bute", "oats", 20),
                ("clyde", "wheat", 60),
                ("clyde", "oats", 25),
            ]
        ],
        columns=["county", "crop", "farms"],
    )
    rows = []
    for t in totals.itertuples():
        for i in range(max(3, t.farms // 5)):
            rows.append(
                (
                    f"{t.county}-{t.crop}-{i}",
                    2021,
                    t.county,
                    t.crop,
                    float(rng.gamma(2.0, 3.0)),
                    int(rng.random() < 0.4),
                )
            )
    resp = pd.DataFrame(rows, columns=["farm_id", "year", "county", "crop", "yield_t", "irrigated"])
    resp.to_parquet(tmp_path / "farms.parquet", index=False)
    totals.to_parquet(tmp_path / "totals.parquet", index=False)
    vars_ = farm_vars(
        tmp_path / "farms.parquet",
        tmp_path / "totals.parquet",
        {"yield_t": {"type": "continuous", "min": 0}, "irrigated": {"type": "binary"}},
        ss_quasi_identifiers=["county", "crop"],
        **OTHER_LAYERS_NEUTRAL,
    )
    res = build(tmp_path / "run", vars_)
    assert res.ok, res.output[-4000:]
    dw = res.query("select cell_id, design_weight, base_weight from design_weights")
    n = resp.groupby(["county", "crop"]).size()
    N = totals.set_index(["county", "crop"]).farms
    want = (N / n).rename(lambda x: x, level=None)
    got = dw.groupby("cell_id").design_weight.first()
    for (c, k), v in want.items():
        assert got[f"{c}|{k}"] == pytest.approx(v, rel=1e-12)
    w = res.query("select sum(calibrated_weight) as s from calibrated_weights").s[0]
    assert w == pytest.approx(totals.farms.sum(), rel=1e-9)
    est = res.query("select * from direct_estimates where domain_level = 'national'")
    assert set(est.indicator) == {"yield_t", "irrigated=0", "irrigated=1"}
