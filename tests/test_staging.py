"""Staging and support map: planted bad rows are quarantined with a reason, structural errors stop
the run with a message naming the var or column, rows are conserved, and cell_support matches a
hand-computed example. Each test builds its own small DuckDB warehouse."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from harness import farm_vars, run_dbt

STAGING = "+cell_support +quarantined_responses"


def _frame() -> pd.DataFrame:
    rows = []
    i = 0
    for region in ["north", "south"]:
        for sector in ["farming", "retail"]:
            for size in ["0-9", "250+"]:
                for _ in range(10):
                    rows.append(
                        {
                            "business_id": f"U{i:03d}",
                            "region": region,
                            "sector": sector,
                            "size_band": size,
                            "register_employment": float(i % 7 + 1),
                            "register_turnover": float(100 + i),
                        }
                    )
                    i += 1
    return pd.DataFrame(rows)


def _responses(frame: pd.DataFrame) -> pd.DataFrame:
    base = frame.iloc[::2].copy()  # 40 units
    out = []
    for wave in [1, 2]:
        d = base[["business_id", "region", "sector", "size_band"]].copy()
        d["wave"] = wave
        d["design_weight"] = 2.0
        d["trading_status"] = "trading"
        d["turnover_change"] = "stayed_same"
        d["turnover"] = 10.0
        d["employees"] = 3.0
        d["cash_reserves"] = "none"
        d["applied_finance"] = 1
        out.append(d)
    return pd.concat(out, ignore_index=True)


def _write(tmp: Path, responses: pd.DataFrame, frame: pd.DataFrame, fmt: str = "parquet") -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        responses.to_csv(tmp / "responses.csv", index=False)
        rpath = tmp / "responses.csv"
    else:
        responses.to_parquet(tmp / "responses.parquet", index=False)
        rpath = tmp / "responses.parquet"
    frame.to_parquet(tmp / "frame.parquet", index=False)
    return {"ss_responses": f"file:{rpath}", "ss_frame": f"file:{tmp / 'frame.parquet'}"}


def test_clean_inputs_stage_everything(tmp_path):
    frame = _frame()
    resp = _responses(frame)
    res = run_dbt(tmp_path, vars=_write(tmp_path / "in", resp, frame), select=STAGING)
    assert res.ok, res.output
    n = res.query("select count(*) as n from stg_responses")["n"][0]
    q = res.query("select count(*) as n from quarantined_responses")["n"][0]
    assert n == len(resp) and q == 0
    support = res.query("select * from cell_support")
    assert len(support) == 8 * 2  # every population cell x wave
    assert set(support["n_population"]) == {10}


def test_each_invalid_row_kind_is_quarantined_with_reason(tmp_path):
    frame = _frame()
    resp = _responses(frame).astype({"design_weight": object, "employees": object})
    resp["applied_finance"] = resp["applied_finance"].astype(object)
    resp["wave"] = resp["wave"].astype(object)
    bad = resp.iloc[:11].copy()
    bad["business_id"] = [f"X{i}" for i in range(11)]  # fresh ids; patched below
    rows = []

    def plant(idx: int, **changes):
        r = resp.iloc[idx].to_dict()
        r.update(changes)
        rows.append(r)

    # each planted row breaks exactly one rule (keys drawn from the frame, waves 3 so no dupes)
    plant(0, wave=3, region=None)
    plant(1, wave=3, region="atlantis")
    plant(2, wave=3, design_weight=0)
    plant(3, wave=3, design_weight=-1.5)
    plant(4, wave=3, design_weight=None)
    plant(5, wave=3, turnover=-5.0)
    plant(6, wave=3, employees=2.5)
    plant(7, wave=3, employees="many")
    plant(8, wave=3, trading_status="bankrupt")
    plant(9, wave=3, applied_finance=2)
    plant(10, wave=None)
    plant(11, wave=3, business_id=None)
    plant(12, wave=3, business_id="NOT-ON-FRAME")
    plant(13, wave=3)
    plant(13, wave=3)  # the same unit twice in wave 3: both copies are quarantined
    planted = pd.DataFrame(rows)
    full = pd.concat([resp, planted], ignore_index=True)
    res = run_dbt(tmp_path, vars=_write(tmp_path / "in", full, frame, fmt="csv"), select=STAGING)
    # 15 bad rows of 95 is above the default 5% threshold: the quarantine gate must fail ...
    assert not res.ok
    assert res.statuses()["quarantine_share_within_threshold"] == "fail"
    q = res.query("select * from quarantined_responses order by _row_id, problem")
    reasons = " | ".join(q["reason"])
    expected = [
        ("bad_cell_value", "region (cell dimension) is missing"),
        ("bad_cell_value", "region = 'atlantis' is not a value of the population"),
        ("bad_weight", "design weight 0"),
        ("bad_weight", "is not positive"),
        ("bad_weight", "design weight (design_weight) is missing"),
        ("out_of_range", "turnover = -5.0 is below its minimum 0"),
        ("out_of_range", "employees = 2.5 is not a whole number"),
        ("out_of_range", "employees = 'many' is not a number"),
        ("unknown_level", "trading_status = 'bankrupt' is not one of its levels"),
        ("unknown_level", "applied_finance = '2' is not one of its levels"),
        ("missing_wave", "wave (wave) is missing"),
        ("missing_unit_id", "unit id (business_id) is missing"),
        ("unit_not_on_frame", "unit NOT-ON-FRAME is not on the frame"),
        ("duplicate_unit_wave", "appears 2 times in wave 3"),
    ]
    for problem, text in expected:
        hit = q[(q["problem"] == problem) & q["reason"].str.contains(text, regex=False)]
        assert len(hit) >= 1, f"{problem}: '{text}' not in {reasons}"
    assert (q["problem"] == "duplicate_unit_wave").sum() == 2
    # ... and nothing is dropped: staged + distinct quarantined rows = input rows
    n_staged = res.query("select count(*) as n from stg_responses")["n"][0]
    assert n_staged + q["_row_id"].nunique() == len(full)
    assert q["_row_id"].nunique() == len(planted)


def test_quarantine_threshold_is_a_var(tmp_path):
    frame = _frame()
    resp = _responses(frame)
    resp.loc[0, "turnover"] = -1.0  # 1 of 80 rows = 1.25%
    vars_ = _write(tmp_path / "in", resp, frame)
    assert run_dbt(tmp_path / "a", vars=vars_, select=STAGING).ok
    strict = run_dbt(
        tmp_path / "b", vars={**vars_, "ss_max_quarantine_share": 0.01}, select=STAGING
    )
    assert not strict.ok
    assert strict.statuses()["quarantine_share_within_threshold"] == "fail"


@pytest.mark.parametrize(
    "override, message",
    [
        (
            {"ss_design_weight": "wgt"},
            "column 'wgt' (set by var 'ss_design_weight') not found in ss_responses",
        ),
        (
            # (the published tables name size_band, so they are emptied to reach the frame check)
            {"ss_cell_dims": ["region", "county"], "ss_sdc_tables": []},
            "column 'county' (set by var 'ss_cell_dims') not found in ss_frame",
        ),
        (
            {"ss_cell_dims": ["region", "county"]},
            "ss_sdc_tables 'turnover_by_region_size_band': cols = 'size_band' is not a cell dimension",
        ),
        (
            {"ss_outcomes": {"turnover": {"type": "banana"}}},
            "var 'ss_outcomes'.turnover: type must be one of",
        ),
        ({"ss_outcomes": {"trading_status": {"type": "categorical"}}}, "needs 'levels'"),
        ({"ss_cell_dims": "region"}, "var 'ss_cell_dims' must be a non-empty list"),
        (
            {"ss_max_quarantine_share": 2},
            "var 'ss_max_quarantine_share' must be a number in [0, 1]",
        ),
        ({"ss_frame": None}, "set var 'ss_frame'"),
        ({"ss_responses": "source:oops"}, "write sources as 'source:<source>.<table>'"),
    ],
)
def test_structural_errors_stop_the_run_with_a_message(tmp_path, override, message):
    frame = _frame()
    vars_ = {**_write(tmp_path / "in", _responses(frame), frame), **override}
    res = run_dbt(tmp_path, vars=vars_, select=STAGING)
    assert not res.ok
    assert message in res.output, res.output[-3000:]


def test_cell_absent_from_frame_is_structural(tmp_path):
    frame = _frame()
    resp = _responses(frame)
    # every value is known on its own, but the frame has no (north, farming, 250+) unit:
    # the register puts those units in the 0-9 band while the survey says 250+
    moved = (frame.region == "north") & (frame.sector == "farming") & (frame.size_band == "250+")
    frame.loc[moved, "size_band"] = "0-9"
    res = run_dbt(tmp_path, vars=_write(tmp_path / "in", resp, frame), select=STAGING)
    assert not res.ok
    assert "absent from the population (ss_frame)" in res.output
    assert "region='north', sector='farming', size_band='250+'" in res.output


def test_frame_with_duplicate_units_is_structural(tmp_path):
    frame = _frame()
    frame = pd.concat([frame, frame.iloc[:2]], ignore_index=True)
    res = run_dbt(
        tmp_path, vars=_write(tmp_path / "in", _responses(_frame()), frame), select=STAGING
    )
    assert not res.ok
    assert "lists 2 unit id(s) of column 'business_id' more than once" in res.output


def test_cell_support_matches_hand_computation(tmp_path):
    frame = _frame()
    resp = _responses(frame)
    resp = resp[resp.wave == 1].copy()
    cell = (resp.region == "north") & (resp.sector == "farming") & (resp.size_band == "0-9")
    idx = resp.index[cell]
    assert len(idx) == 5
    resp.loc[idx, "design_weight"] = [1.0, 2.0, 3.0, 4.0, 10.0]
    # another cell keeps 2 respondents only
    cell2 = (resp.region == "south") & (resp.sector == "retail") & (resp.size_band == "250+")
    resp = resp.drop(resp.index[cell2][2:])
    res = run_dbt(
        tmp_path,
        vars={
            **_write(tmp_path / "in", resp, frame),
            "ss_sparse_below_n": 5,
            "ss_sparse_below_neff": 4,
        },
        select=STAGING,
    )
    assert res.ok, res.output
    s = res.query("select * from cell_support").set_index("cell_id")
    w = [1.0, 2.0, 3.0, 4.0, 10.0]
    n_eff = sum(w) ** 2 / sum(x * x for x in w)  # 400 / 130
    mean = sum(w) / 5
    cv = math.sqrt(sum((x - mean) ** 2 for x in w) / 5) / mean
    row = s.loc["north|farming|0-9"]
    assert row.n_respondents == 5 and row.n_population == 10
    assert row.sum_weights == pytest.approx(20.0, rel=1e-12)
    assert row.n_effective == pytest.approx(n_eff, rel=1e-12)
    assert row.weight_cv == pytest.approx(cv, rel=1e-12)
    assert row.support_class == "sparse"  # n = 5 >= 5 but n_eff = 3.08 < 4
    assert "effective respondents" in row.reason
    row2 = s.loc["south|retail|250+"]
    assert row2.n_respondents == 2 and row2.support_class == "sparse"
    assert "2 respondents, below ss_sparse_below_n = 5" in row2.reason
    assert s.loc["north|retail|0-9"].support_class == "supported"


def _farm_survey(tmp_path):
    """A differently shaped survey: farms by county x crop, year as wave, no design weight,
    no unit frame (population counts per cell only), other outcome types."""
    import numpy as np

    rng = np.random.default_rng(5)
    counties = ["alba", "bray", "cork", "derry", "ennis"]
    crops = ["wheat", "barley", "oats"]
    cells = [(c, k) for c in counties for k in crops]
    totals = pd.DataFrame(
        [{"county": c, "crop": k, "farms": 40 + 17 * i} for i, (c, k) in enumerate(cells)]
    )
    rows = []
    for year in [2021, 2022]:
        for i, t in totals.iterrows():
            n = [3, 4, 20, 40, 30][i % 5]  # some cells thin, most supported
            for j in range(n):
                rows.append(
                    {
                        "farm_id": f"F{i}-{j}",
                        "year": year,
                        "county": t.county,
                        "crop": t.crop,
                        "yield_t": float(np.round(rng.gamma(4, 1.0 + 0.1 * i), 3)),
                        "irrigated": int(rng.random() < 0.2 + 0.03 * i),
                        "soil": ["clay", "loam", "sand"][int(rng.integers(0, 3))],
                    }
                )
    resp = pd.DataFrame(rows)
    inp = tmp_path / "in"
    inp.mkdir()
    resp.to_parquet(inp / "farms.parquet", index=False)
    totals.to_parquet(inp / "totals.parquet", index=False)
    vars_ = farm_vars(
        inp / "farms.parquet",
        inp / "totals.parquet",
        {
            "yield_t": {"type": "continuous", "min": 0},
            "irrigated": {"type": "binary"},
            "soil": {"type": "categorical", "levels": ["clay", "loam", "sand"]},
        },
        ss_quasi_identifiers=["county", "crop", "soil"],
        ss_sparse_below_n=5,
        ss_calibration_margins=[["county"], ["crop"]],
        ss_calibration_totals=[],
        ss_synth_rules=[],
        ss_sdc_tables=[
            {"name": "yield_by_county_crop", "value": "yield_t", "rows": "county", "cols": "crop"}
        ],
        ss_fidelity_regression={"y": "yield_t", "x": ["irrigated"]},
    )
    return resp, totals, vars_


def test_second_dataset_with_other_names_and_totals_only(tmp_path):
    resp, _totals, vars_ = _farm_survey(tmp_path)
    res = run_dbt(tmp_path, vars=vars_, select=STAGING)
    assert res.ok, res.output
    s = res.query("select * from cell_support order by cell_id, wave")
    assert len(s) == 15 * 2
    assert set(s.columns) >= {"county", "crop", "cell_id", "wave", "n_respondents", "n_population"}
    assert s.set_index(["cell_id", "wave"]).loc[("alba|wheat", 2021)].n_population == 40
    assert (s.n_effective == s.n_respondents).all()  # no design weights: equal weights
    assert sorted(s.support_class.unique()) == ["sparse", "supported"]
    staged = res.query("select * from stg_responses")
    assert len(staged) == len(resp)
    assert {"yield_t", "irrigated", "soil", "county", "crop"} <= set(staged.columns)


def test_second_dataset_full_build_by_vars_alone(tmp_path):
    """The whole project, synthesis and gates included, on the farm survey: no model edited."""
    _resp, _totals, vars_ = _farm_survey(tmp_path)
    res = run_dbt(tmp_path, vars=vars_)
    assert res.ok, res.output[-6000:]
    syn = res.query("select * from synthetic_microdata")
    assert len(syn) > 0 and {"yield_t", "irrigated", "soil", "county", "crop"} <= set(syn.columns)
    est = res.query("select * from domain_estimates where county is not null and crop is not null")
    assert set(est["method"]) >= {"direct", "augmented"}


def test_ratio_auxiliary_missing_in_the_frame_fails_the_build(tmp_path):
    """The demo's ratio estimator (turnover on register_turnover) needs the register for every
    unit: planted, one frame unit without it fails ratio_auxiliaries_known and names the unit; the
    clean frame passes it."""
    frame = _frame()
    resp = _responses(frame)
    ok = run_dbt(tmp_path / "a", vars=_write(tmp_path / "in_a", resp, frame), select=STAGING)
    assert ok.ok, ok.output
    assert ok.statuses().get("surveysynth_ratio_auxiliaries_known_stg_frame_") == "pass"
    bad = frame.copy()
    bad.loc[5, "register_turnover"] = None
    res = run_dbt(tmp_path / "b", vars=_write(tmp_path / "in_b", resp, bad), select=STAGING)
    assert not res.ok
    assert "ratio_auxiliaries_known FAILED" in res.output and "U005" in res.output
    assert "ss_ratio_estimators" in res.output
