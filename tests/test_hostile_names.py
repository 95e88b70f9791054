"""Any column name a warehouse allows and any level text reach SQL quoted: the whole project, from
staging to the release, builds on a small demo world whose columns are renamed to a hyphen, spaces,
a reserved word, a pound sign and a double quote, with an apostrophe in a category level and in a
business rule's name, and publishes under those names (DuckDB)."""

from __future__ import annotations

import pandas as pd
import pytest
from harness import demo_vars, generate_demo, run_dbt

RENAMED = {
    "business_id": "business id",
    "wave": "order",
    "sector": "sector-code",
    "size_band": "size band",
    "design_weight": "weight (design)",
    "trading_status": "trading-status",
    "turnover": "turnover £",
    "applied_finance": "applied finance",
    "register_turnover": "reg-turnover",
    "cash_reserves": 'cash "reserves"',
}
PAUSED = "paused (don't know)"
RESERVES = ["none", "under_1_month", "1_to_3_months", "3_to_6_months", "over_6_months"]


def hostile_vars(inp) -> dict:
    return demo_vars(
        inp,
        ss_unit_id="business id",
        ss_frame_unit_id="business id",
        ss_wave="order",
        ss_cell_dims=["region", "sector-code", "size band"],
        ss_design_weight="weight (design)",
        ss_outcomes={
            "trading-status": {"type": "categorical", "levels": ["trading", PAUSED, "closed"]},
            "turnover_change": {
                "type": "ordinal",
                "levels": ["decreased", "stayed_same", "increased"],
            },
            "turnover £": {"type": "continuous", "min": 0},
            "employees": {"type": "count", "min": 0},
            'cash "reserves"': {"type": "ordinal", "levels": RESERVES},
            "applied finance": {"type": "binary"},
        },
        ss_quasi_identifiers=["region", "sector-code", "size band", "employees"],
        ss_sensitive=["turnover £", "applied finance"],
        ss_frame_auxiliaries=["register_employment", "reg-turnover"],
        ss_ratio_estimators={"turnover £": "reg-turnover"},
        ss_synth_rules=[
            {
                "name": "paused or closed: no turnover (don't report one)",
                "when": {"trading-status": [PAUSED, "closed"]},
                "then": {"turnover £": {"equals": 0}},
            },
            {
                "name": "closed_no_employees",
                "when": {"trading-status": ["closed"]},
                "then": {"employees": {"equals": 0}},
            },
        ],
        ss_sdc_tables=[
            {
                "name": "turnover by region x size",
                "value": "turnover £",
                "rows": "region",
                "cols": "size band",
            }
        ],
        ss_fidelity_regression={"y": "turnover £", "x": ["employees"]},
    )


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_names")
    data = generate_demo(
        root / "data",
        *("--seed", "11", "--frame-size", "30000", "--target-responses-per-wave", "1500"),
        *("--waves", "2"),
    )
    inp = root / "in"
    inp.mkdir()
    r = pd.read_parquet(data / "responses.parquet").rename(columns=RENAMED)
    r["trading-status"] = r["trading-status"].replace({"paused": PAUSED})
    r.to_parquet(inp / "responses.parquet", index=False)
    pd.read_parquet(data / "frame.parquet").rename(columns=RENAMED).to_parquet(
        inp / "frame.parquet", index=False
    )
    res = run_dbt(root / "work", vars=hostile_vars(inp))
    assert res.ok, res.output[-6000:]
    for raw in ("Traceback", "Parser Error", "Binder Error", "syntax error"):
        assert raw not in res.output
    return res, len(r)


def test_every_row_staged_under_its_own_names(build):
    res, n_input = build
    staged = res.query("select * from stg_responses")
    assert len(staged) == n_input
    assert res.query("select count(*) as n from quarantined_responses")["n"][0] == 0
    assert {"sector-code", "size band", "turnover £", 'cash "reserves"', "applied finance"} <= set(
        staged.columns
    )
    assert PAUSED in set(staged["trading-status"])


def test_estimates_and_margins_are_labelled_with_the_names(build):
    res, _ = build
    inds = set(res.query("select distinct indicator from domain_estimates")["indicator"])
    assert {f"trading-status={PAUSED}", "turnover £", 'cash "reserves"=none'} <= inds
    levels = set(res.query("select distinct domain_level from domain_estimates")["domain_level"])
    assert {"sector-code", "size band", "region_x_size band"} <= levels
    margins = set(res.query("select distinct margin_id from calibration_margins")["margin_id"])
    assert margins == {"region", "sector-code", "size band"}
    ratio = res.query("select * from direct_estimates where measure = 'ratio'")
    assert set(ratio["indicator"]) == {"turnover £"} and set(ratio["auxiliary"]) == {"reg-turnover"}


def test_release_carries_the_names(build):
    res, _ = build
    cols = set(res.query("select * from main_release.synthetic_microdata_release limit 1").columns)
    assert {
        "sector-code",
        "size band",
        "trading-status",
        'cash "reserves"',
        "reg-turnover_band",
    } <= cols
    assert (
        res.query("select count(*) as n from main_release.synthetic_microdata_release")["n"][0] > 0
    )
    gates = res.query("select * from release_gates")
    assert len(gates) > 0 and gates["passed"].all()
