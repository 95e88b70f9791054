"""Business-rule grammar, the violations check and rule enforcement; config errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surveysynth.contract.config import SynthConfig, SynthConfigError
from surveysynth.contract.rules import apply_rules, enforce, violations

OUTCOMES = {
    "status": {"type": "categorical", "levels": ["trading", "paused", "closed"]},
    "cash": {"type": "ordinal", "levels": ["none", "low", "mid", "high"]},
    "sales": {"type": "continuous", "min": 0},
    "staff": {"type": "count", "min": 0, "max": 100},
    "flag": {"type": "binary"},
}
RULES = [
    {
        "name": "idle_no_sales",
        "when": {"status": ["paused", "closed"]},
        "then": {"sales": {"equals": 0}},
    },
    {
        "name": "closed_cash_none",
        "when": {"status": ["closed"]},
        "then": {"cash": {"in": ["none", "low"]}},
    },
    {
        "name": "closed_flag_null",
        "when": {"status": ["closed"], "region": ["x"]},
        "then": {"flag": {"is_null": True}},
    },
]


def _vars(**extra):
    v = {
        "ss_unit_id": "id",
        "ss_wave": "wave",
        "ss_cell_dims": ["region"],
        "ss_outcomes": OUTCOMES,
        "ss_synth_rules": RULES,
    }
    v.update(extra)
    return v


def _df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": ["x", "x", "y", "y", "x"],
            "status": ["trading", "paused", "closed", "closed", "closed"],
            "cash": ["high", "mid", "high", "low", "mid"],
            "sales": [5.0, 3.0, 0.0, np.nan, -1.0],
            "staff": pd.array([1, 2, 3, 150, None], dtype="Int64"),
            "flag": pd.array([1, 0, 1, 1, 1], dtype="Int64"),
        }
    )


def test_violations_lists_each_failing_row_and_check():
    cfg = SynthConfig.from_vars(_vars())
    v = violations(_df(), cfg.rules, cfg.outcomes)
    got = set(zip(v["row"], v["rule"]))
    assert (1, "idle_no_sales") in got  # paused with sales 3
    assert (3, "idle_no_sales") in got  # closed with null sales fails `equals`
    assert (4, "idle_no_sales") in got
    assert (2, "closed_cash_none") in got and (4, "closed_cash_none") in got
    assert (3, "closed_cash_none") not in got
    assert (4, "closed_flag_null") in got and (2, "closed_flag_null") not in got
    assert (4, "sales:min") in got  # range
    assert (3, "staff:max") in got
    assert (0, "idle_no_sales") not in got


def test_raw_specs_accepted_and_clean_table_has_no_violations():
    ok = pd.DataFrame(
        {
            "status": ["trading"],
            "cash": ["low"],
            "sales": [1.5],
            "staff": pd.array([3], dtype="Int64"),
            "flag": [0],
            "region": ["x"],
        }
    )
    assert violations(ok, RULES, OUTCOMES).empty


def test_enforce_meets_every_rule_by_construction():
    cfg = SynthConfig.from_vars(_vars())
    df = enforce(_df(), cfg.rules, cfg.outcomes)
    assert violations(df, cfg.rules, cfg.outcomes).empty
    assert df.loc[2, "cash"] == "low"  # 'high' moved to the nearest allowed level
    assert df.loc[4, "cash"] == "low"
    assert pd.isna(df.loc[4, "flag"])
    assert df["staff"].dtype == "Int64" and df.loc[3, "staff"] == 100


def test_rules_that_undo_each_other_raise():
    rules = [
        {"name": "a", "when": {"status": ["closed"]}, "then": {"cash": {"equals": "none"}}},
        {"name": "b", "when": {"status": ["closed"]}, "then": {"cash": {"equals": "high"}}},
    ]
    cfg = SynthConfig.from_vars(_vars(ss_synth_rules=rules))
    with pytest.raises(ValueError, match="conflict"):
        apply_rules(_df(), cfg.rules, cfg.outcomes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ss_outcomes": {"a": {"type": "weird"}}}, "type 'weird' unknown"),
        ({"ss_outcomes": {"a": {"type": "categorical"}}}, "needs 'levels'"),
        ({"ss_outcomes": {"a": {"type": "count", "min": 5, "max": 1}}}, "min"),
        ({"ss_synth_mode": "both"}, "ss_synth_mode"),
        ({"ss_synth_backend": "gan"}, "ss_synth_backend"),
        ({"ss_synth_m": 0}, "ss_synth_m"),
        (
            {
                "ss_synth_rules": [
                    {"name": "r", "when": {"nope": [1]}, "then": {"sales": {"equals": 0}}}
                ]
            },
            "when-column 'nope'",
        ),
        (
            {
                "ss_synth_rules": [
                    {
                        "name": "r",
                        "when": {"status": ["closed"]},
                        "then": {"cash": {"equals": "zero"}},
                    }
                ]
            },
            "not one of the levels",
        ),
        (
            {
                "ss_synth_rules": [
                    {"name": "r", "when": {"status": ["closed"]}, "then": {"sales": {"equals": -1}}}
                ]
            },
            "outside",
        ),
        (
            {
                "ss_synth_rules": [
                    {"name": "r", "when": {"status": ["closed"]}, "then": {"sales": {"between": 1}}}
                ]
            },
            "op 'between'",
        ),
    ],
)
def test_config_errors_name_the_var(change, message):
    with pytest.raises(SynthConfigError, match=message):
        SynthConfig.from_vars(_vars(**change))


def test_from_dbt_project_reads_the_contract():
    cfg = SynthConfig.from_dbt_project("dbt_project.yml", "demo/demo_vars.yml")
    assert cfg.cell_dims and cfg.outcomes and cfg.m >= 1
    assert (
        cfg.to_json()
        == SynthConfig.from_dbt_project("dbt_project.yml", "demo/demo_vars.yml").to_json()
    )


def test_rule_values_written_the_yaml_way_and_typos():
    """A binary answer's rule values written as YAML booleans read as 1 / 0 (as bools they had
    matched nothing in a condition and crashed the sampler in a consequence); a condition's
    value that is not a level of the answer is an error (a typo had never fired)."""
    rules = [
        {
            "name": "closed_flagged",
            "when": {"status": ["closed"]},
            "then": {"flag": {"equals": True}},
        },
        {"name": "flagged_no_sales", "when": {"flag": [True]}, "then": {"sales": {"equals": 0}}},
    ]
    cfg = SynthConfig.from_vars(_vars(ss_synth_rules=rules))
    assert cfg.rules[0].then[0].value == 1 and type(cfg.rules[0].then[0].value) is int
    assert cfg.rules[1].when == (("flag", (1,)),)
    df = _df().assign(
        flag=pd.array([1, 0, 0, 1, 1], dtype="Int64"), sales=[5.0, 3.0, 0.0, 0.0, 2.0]
    )
    v = violations(df, cfg.rules, cfg.outcomes)
    # row 2 closed without the flag, rows 0 and 4 flagged with sales
    mine = v[v["rule"].isin(["closed_flagged", "flagged_no_sales"])]
    assert set(zip(mine["rule"], mine["row"])) == {
        ("closed_flagged", 2),
        ("flagged_no_sales", 0),
        ("flagged_no_sales", 4),
    }, v
    typo = [{"name": "t", "when": {"status": ["Closed"]}, "then": {"sales": {"equals": 0}}}]
    with pytest.raises(SynthConfigError, match=r"when\['status'\] value 'Closed' is not one"):
        SynthConfig.from_vars(_vars(ss_synth_rules=typo))
    odd = [{"name": "o", "when": {"flag": ["yes"]}, "then": {"sales": {"equals": 0}}}]
    with pytest.raises(SynthConfigError, match="must be 0 or 1"):
        SynthConfig.from_vars(_vars(ss_synth_rules=odd))


def test_a_list_var_given_as_one_name():
    cfg = SynthConfig.from_vars(_vars(ss_synth_augment_classes="empty"))
    assert cfg.augment_classes == ("empty",)
