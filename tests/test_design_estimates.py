"""Direct estimates: Hajek means and shares, totals and ratio estimates with calibration-aware
linearised SEs (the g-weighted residuals of R's calibrated designs) equal an independent numpy
implementation on every margin domain, every pair of dimensions and on cells, item nonresponse and
lonely strata included (pooled per region x size band as the demo's ss_variance_collapse says); intervals on the estimate's scale; every population domain has a row;
grades follow the vars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from calibrated_reference import (
    calibrated_domain,
    direct_interval,
    item_class_factor,
    margin_dummies,
)

DIMS = ["region", "sector", "size_band"]
Z = 1.959963984540054


@pytest.fixture(scope="module")
def estimates(demo_build):
    res, _ = demo_build
    est = res.query("select * from direct_estimates")
    units = res.query(
        """
        select r.*, c.calibrated_weight as w, c.base_weight as d
        from stg_responses r join calibrated_weights c using (_row_id)
        """
    )
    return res, est, units


def _y(units: pd.DataFrame, indicator: str) -> np.ndarray:
    if "=" in indicator:
        col, level = indicator.split("=", 1)
        v = units[col]
        out = (v.astype(str) == level).astype(float).to_numpy()
        return np.where(v.isna().to_numpy(), np.nan, out)
    return units[indicator].astype(float).to_numpy()


def test_every_population_domain_has_a_row(estimates, demo_data):
    _, est, _ = estimates
    frame = pd.read_parquet(demo_data / "frame.parquet")
    n_cells = frame.groupby(DIMS).ngroups
    per_domain = est.groupby(["domain_level", "wave"]).size().unstack()
    n_rows = per_domain.loc["national"].iloc[0]  # indicator x measure rows per domain
    assert per_domain.loc["cell"].eq(n_cells * n_rows).all()
    for d in DIMS:
        assert per_domain.loc[d].eq(frame[d].nunique() * n_rows).all()
    # every pair of dimensions (region x size band included) is a domain by default
    for i, a in enumerate(DIMS):
        for b in DIMS[i + 1 :]:
            assert per_domain.loc[f"{a}_x_{b}"].eq(frame.groupby([a, b]).ngroups * n_rows).all()
    assert set(est.measure) == {"mean", "share", "total", "ratio"}
    empty = est[(est.n_respondents == 0)]
    assert empty.estimate.isna().all() and (empty.grade == "not_published").all()


def _variance_strata(u, frame, cell_key, n_pop):
    """The demo's variance strata (ss_variance_collapse: [region, size_band]): a cell with fewer
    than two respondents in the wave joins its region x size band's pool, whose population is
    that of every such cell of the frame (respondents or none)."""
    n = u.groupby("stratum").size()
    pool = lambda df: "collapsed|" + df.region + "|" + df.size_band
    cells = frame.assign(k=cell_key(frame)).groupby("k")[["region", "size_band"]].first()
    cells["n"] = n.reindex(cells.index).fillna(0)
    cells["N"] = pd.Series(n_pop)
    thin = cells[cells.n < 2]
    n_pop_v = {**n_pop, **thin.assign(p=pool(thin)).groupby("p").N.sum().to_dict()}
    lonely = u.stratum.map(n).lt(2)
    return u.assign(vstratum=u.stratum.where(~lonely, pool(u))), n_pop_v


def test_estimates_and_se_equal_numpy_taylor_reference(estimates, demo_data):
    _, est, units = estimates
    frame = pd.read_parquet(demo_data / "frame.parquet")
    cell_key = lambda df: df.region + "|" + df.sector + "|" + df.size_band
    units = units.assign(stratum=cell_key(units))
    n_pop = frame.assign(k=cell_key(frame)).groupby("k").size().to_dict()
    frame_key = cell_key(frame)

    # domains: national, every one-way margin category, and cells from the best to the thinnest
    cell_counts = units.groupby(["wave", "stratum"]).size()
    w1 = cell_counts.loc[1].sort_values()
    chosen_cells = list(w1.index[-25:]) + list(w1.index[:5])  # includes single-respondent cells
    checked = 0
    for wave, u in units.groupby("wave"):
        e = est[est.wave == wave]
        u, n_pop_v = _variance_strata(u, frame, cell_key, n_pop)
        X = margin_dummies(*(u[d].to_numpy() for d in DIMS))
        domains = [("national", None, np.ones(len(u), bool))]
        for d in DIMS:
            for v in frame[d].unique():
                domains.append((d, v, (u[d] == v).to_numpy()))
        for v in ["scotland", "london"]:
            domains.append(
                (
                    "region_x_size_band",
                    (v, "0-9"),
                    ((u.region == v) & (u.size_band == "0-9")).to_numpy(),
                )
            )
        for c in chosen_cells:
            domains.append(("cell", c, (u.stratum == c).to_numpy()))
        for level, value, mask in domains:
            if level == "national":
                rows = e[e.domain_level == "national"]
                in_frame = np.ones(len(frame), bool)
            elif level == "cell":
                rows = e[(e.domain_level == "cell") & (e.cell_id == value)]
                in_frame = frame_key == value
            elif level == "region_x_size_band":
                rows = e[
                    (e.domain_level == level) & (e.region == value[0]) & (e.size_band == value[1])
                ]
                in_frame = (frame.region == value[0]) & (frame.size_band == value[1])
            else:
                rows = e[(e.domain_level == level) & (e[level] == value)]
                in_frame = frame[level] == value
            for row in rows.itertuples():
                y = _y(u, row.indicator)
                args = (y, u.w.to_numpy(), u.d.to_numpy(), X, mask, u.vstratum.to_numpy(), n_pop_v)
                if row.measure == "ratio":
                    x = u[row.auxiliary].astype(float).to_numpy()
                    known = frame.loc[in_frame, row.auxiliary].sum()  # the register's total
                    ref = calibrated_domain(*args, "ratio", x=x, known_x=known)
                else:
                    m = "total" if row.measure == "total" else "mean"
                    ref = calibrated_domain(*args, m, classes=u.stratum.to_numpy())
                est_ref, se_ref, n_ref = ref
                assert row.n_respondents == n_ref
                if n_ref == 0:
                    assert np.isnan(row.estimate)
                    continue
                assert np.isclose(row.estimate, est_ref, rtol=1e-9, atol=1e-12), (level, value, row)
                if n_ref < 2:
                    assert np.isnan(row.se)
                    continue
                # 1e-6 relative; where the true SE is 0 (every answer equal within each stratum) the
                # one-pass sums of squares leave rounding noise, bounded by 1e-7 of the estimate
                scale = max(abs(est_ref), 1e-300)
                assert np.isclose(row.se, se_ref, rtol=1e-6, atol=1e-7 * scale), (level, value, row)
                # the interval (SQL t: Hill's approximation, relative error < 5e-4)
                ok = mask & ~np.isnan(y)
                wa = u.w.to_numpy()
                if row.measure in ("mean", "share"):
                    wa = wa * item_class_factor(y, wa, u.stratum.to_numpy())
                n_kish = wa[ok].sum() ** 2 / (wa[ok] ** 2).sum()
                df = max(n_ref - u.vstratum[ok].nunique(), 1)
                assert row.df == df
                lo, hi = direct_interval(row.estimate, row.se, df, n_kish, row.measure)
                tol = 2e-3 * max(hi - lo, 1e-12)
                assert abs(row.ci_low - lo) <= tol and abs(row.ci_high - hi) <= tol, (row, lo, hi)
                if row.measure == "share":
                    assert 0 <= row.ci_low <= row.ci_high <= 1
                checked += 1
    assert checked > 2000


def test_grades_follow_the_thresholds(estimates):
    _, est, _ = estimates
    small = est[est.n_respondents < 10]
    assert (small.grade == "not_published").all()
    ok = est[(est.n_respondents >= 10) & est.cv.notna()]
    want = np.where(ok.cv < 0.20, "good", np.where(ok.cv < 0.35, "caution", "not_published"))
    assert (ok.grade.to_numpy() == want).all()
    assert {"good", "caution", "not_published"} <= set(est.grade)
    nat = est[(est.domain_level == "national") & (est.measure != "total")]
    assert (nat.grade != "not_published").mean() > 0.9
