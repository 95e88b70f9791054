"""Calibration: SQL raking against an independent numpy IPF and samplics, margins reproduced,
bounds respected, known auxiliary totals met, and each calibration gate failing the build with a
message that names the margin and category."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from design_fixtures import DIMS, build, cell_codes, demo_vars, margin_arrays, rel_diff
from design_reference import Margin, rake
from harness import run_dbt

MARGINS = [["region"], ["sector"], ["size_band"]]


def _units(res) -> pd.DataFrame:
    return res.query(
        """
        select d.*, c.calibrated_weight, c.g
        from design_weights d join calibrated_weights c using (_row_id)
        order by d._row_id
        """
    )


def test_default_build_passes_every_calibration_gate(demo_build):
    res, _ = demo_build
    st = res.statuses()
    names = (
        "margins_within_tolerance",
        "weights_within_bounds",
        "calibration_converged",
        "nonresponse_classes_resolved",
    )
    gates = [k for k in st if any(n in k for n in names)]
    assert len(gates) >= 4, sorted(st)
    assert all(st[k] == "pass" for k in gates), {k: st[k] for k in gates}
    conv = res.query("select * from calibration_convergence")
    assert conv.converged.all() and (conv.iterations >= 2).all()
    check = res.query("select * from calibration_margin_check")
    assert (check.status == "ok").all()
    assert set(check.margin_id) == {"region", "sector", "size_band"}


def test_weights_equal_numpy_ipf_and_reproduce_frame_margins(demo_build, demo_data):
    res, _ = demo_build
    frame = pd.read_parquet(demo_data / "frame.parquet")
    units = _units(res)
    conv = res.query("select wave, iterations from calibration_convergence").set_index("wave")
    for wave, u in units.groupby("wave"):
        ref = rake(
            u.base_weight.to_numpy(),
            margin_arrays(u, frame, MARGINS),
            cell=cell_codes(u, DIMS),
            tol=1e-12,
            max_iter=200,
        )
        assert rel_diff(u.calibrated_weight, ref.weight) < 1e-9
        assert conv.loc[wave, "iterations"] == ref.iterations
        for dims in MARGINS:  # every category total equals the frame count
            got = u.groupby(dims[0]).calibrated_weight.sum()
            want = frame.groupby(dims[0]).size().loc[got.index]
            assert rel_diff(got, want) < 1e-9


def test_weights_equal_samplics_raking(demo_build):
    samplics = pytest.importorskip("samplics")  # a listed baseline dependency
    from samplics.weighting import SampleWeight

    res, _ = demo_build
    units = _units(res)
    targets = res.query("select margin_id, category, wave, target from calibration_margins")
    for wave, u in units.groupby("wave"):
        t = targets[targets.wave == wave]
        margins = {m[0]: u[m[0]].astype(str).to_numpy() for m in MARGINS}
        control = {
            m[0]: {r.category: r.target for r in t[t.margin_id == m[0]].itertuples()}
            for m in MARGINS
        }
        w = SampleWeight().rake(
            samp_weight=u.base_weight.to_numpy(),
            margins=margins,
            control=control,
            tol=1e-12,
            ctrl_tol=1e-12,
            max_iter=500,
        )
        assert rel_diff(u.calibrated_weight, w) < 1e-6
    assert samplics is not None


def test_bounded_raking_with_known_totals_matches_reference(demo_data, tmp_path):
    """Bounds on g plus a known employment total by size band (linear step), run by the unrolled
    SQL method: every margin met, every g inside the bounds, weights equal the unit-level numpy
    implementation of the same algorithm."""
    vars_ = demo_vars(
        demo_data,
        ss_calibration_totals=[{"variable": "register_employment", "by": ["size_band"]}],
        ss_rake_bounds=[0.3, 12],
        ss_rake_method="unrolled",
        ss_rake_max_iter=60,
        ss_rake_tol=1e-8,
    )
    res = build(tmp_path, vars_)
    assert res.ok, res.output[-5000:]
    check = res.query("select * from calibration_margin_check")
    assert set(check.margin_id) == {
        "region",
        "sector",
        "size_band",
        "register_employment by size_band",
    }
    assert (check.status == "ok").all(), check[check.status != "ok"]
    frame = pd.read_parquet(demo_data / "frame.parquet")
    units = _units(res)
    assert units.g.between(0.3 * (1 - 1e-9), 12 * (1 + 1e-9)).all()
    emp_total = frame.groupby("size_band").register_employment.sum()
    for wave, u in units.groupby("wave"):
        counts = margin_arrays(u, frame, MARGINS)
        size = counts[2]
        cats = sorted(frame.size_band.astype(str).unique())
        total = Margin(
            codes=size.codes,
            target=np.array([emp_total[c] for c in cats], dtype=float),
            count_target=size.target,
            x=0,
        )
        ref = rake(
            u.base_weight.to_numpy(),
            counts,
            totals=[total],
            X=u[["register_employment"]].to_numpy(dtype=float),
            cell=cell_codes(u, DIMS),
            tol=1e-8,
            max_iter=60,
            lower=0.3,
            upper=12,
        )
        assert ref.max_rel_error <= 1e-8
        assert rel_diff(u.calibrated_weight, ref.weight) < 1e-6
        got = (u.calibrated_weight * u.register_employment).groupby(u.size_band).sum()
        assert rel_diff(got, emp_total.loc[got.index]) < 1e-7


def test_margin_with_no_respondents_fails_the_build_naming_it(demo_data, tmp_path):
    """Plant an impossible margin: no respondent of north_east in wave 1, whose population is
    positive. Under ss_calibration_uncovered: fail and ss_rake_fallback: none (the defaults,
    collapse and first_margin, build on: test_gates_small) the build must fail, say which
    margin/category/wave, and publish no estimates."""
    r = pd.read_parquet(demo_data / "responses.parquet")
    planted = r[~((r.region == "north_east") & (r.wave == 1))]
    planted.to_parquet(tmp_path / "responses.parquet", index=False)
    vars_ = {
        **demo_vars(demo_data),
        "ss_responses": f"file:{tmp_path / 'responses.parquet'}",
        "ss_calibration_uncovered": "fail",
        "ss_rake_fallback": "none",
    }
    res = build(tmp_path / "run", vars_)
    assert res.returncode != 0
    assert "margin 'region' category 'north_east' (wave 1)" in res.output
    assert "no respondents in this category" in res.output
    assert "wave 1: raking did not converge" in res.output
    st = res.statuses()
    assert st["direct_estimates"] == "skipped"
    assert any("margins_within_tolerance" in k and v == "fail" for k, v in st.items())


def test_bounds_that_make_a_margin_unreachable_fail_the_build(demo_data, tmp_path):
    """Planted bounds [0.9, 1.1]: the base weights of the respondents sum to far below the
    population (nonresponse), so no margin can be met within the bounds (without the default
    fallback to post-stratification, ss_rake_fallback: none)."""
    vars_ = demo_vars(
        demo_data, ss_rake_bounds=[0.9, 1.1], ss_rake_max_iter=30, ss_rake_fallback="none"
    )
    res = build(tmp_path, vars_)
    assert res.returncode != 0
    assert "surveysynth gate calibration_converged FAILED: wave 1" in res.output
    assert "raking did not converge after 30 sweep(s)" in res.output
    assert "ss_rake_bounds = [0.9, 1.1] may make the margins unreachable" in res.output
    g = res.query("select min(g) as lo, max(g) as hi from calibrated_weights")
    assert g.lo[0] >= 0.9 * (1 - 1e-12) and g.hi[0] <= 1.1 * (1 + 1e-12)  # bounds still held


def test_weights_outside_bounds_fail_the_bounds_gate(demo_build, tmp_path):
    """The bounds gate on weights built without bounds, checked against [0.9, 1.1]."""
    res, vars_ = demo_build
    again = run_dbt(
        tmp_path,
        db_name=str(res.db_path),
        vars={**vars_, "ss_rake_bounds": [0.9, 1.1]},
        command="test",
        select="calibrated_weights,test_name:weights_within_bounds",
    )
    assert again.returncode != 0
    assert "surveysynth gate weights_within_bounds FAILED: unit " in again.output
    assert "outside the bounds [0.9, 1.1]" in again.output
