"""Table protection: primary rules flag what they should, the audit finds recoverable cells,
and secondary suppression leaves none. Real data: CPS1988 wage totals (test_risk.load_cps1988)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_risk import load_cps1988

from surveysynth.disclosure.tables import (
    add_margins,
    audit_intervals,
    primary_suppression,
    protect_two_way,
    secondary_suppression,
)


def test_p_percent_rule_flags_and_protection():
    cells = pd.DataFrame({"g": ["unsafe", "safe"], "n": [3, 5]})
    contrib = pd.DataFrame(
        {"g": ["unsafe"] * 3 + ["safe"] * 5, "v": [100.0, 5, 1, 10, 10, 10, 10, 10]}
    )
    # dominance off (k = 100%) to see the p% rule alone
    out = primary_suppression(
        cells, "n", contrib, threshold_k=3, dominance_k=100.0, p=10.0, value_col="v"
    )
    unsafe, safe = out.iloc[0], out.iloc[1]
    assert (unsafe["total"], unsafe["x1"], unsafe["x2"]) == (106.0, 100.0, 5.0)
    # X - x1 - x2 = 1 < p/100 x1 = 10: the second largest estimates the largest within 1%
    assert unsafe["unsafe_p"] and unsafe["primary"] and not unsafe["unsafe_threshold"]
    assert unsafe["protection_required"] == pytest.approx(10.0 - 1.0)
    assert "p%" in unsafe["reason"]
    assert not safe["primary"] and safe["protection_required"] == 0.0 and safe["reason"] == ""


def test_threshold_and_dominance_rules():
    cells = pd.DataFrame({"g": ["few", "dominated", "fine", "empty"]})
    contrib = pd.DataFrame(
        {
            "g": ["few"] * 2 + ["dominated"] * 5 + ["fine"] * 5,
            "unit": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"],
            "v": [5.0, 5, 90, 5, 2, 2, 1, 20, 20, 20, 20, 20],
        }
    )
    out = primary_suppression(
        cells, None, contrib, threshold_k=3, dominance_n=1, dominance_k=80.0, p=0.0, value_col="v"
    ).set_index("g")
    assert out.loc["few", "unsafe_threshold"] and out.loc["few", "n_contributors"] == 2
    assert out.loc["few", "protection_required"] == pytest.approx(0.1 * 10)
    assert out.loc["dominated", "unsafe_dominance"]  # 90 > 80% of 100
    assert out.loc["dominated", "protection_required"] == pytest.approx(100 / 80 * 90 - 100)
    assert not out.loc["fine", "primary"]
    assert not out.loc["empty", "primary"] and out.loc["empty", "total"] == 0
    # one unit reporting twice is one contributor
    twice = contrib.assign(unit=np.where(contrib["g"] == "fine", "same", contrib["unit"]))
    out2 = primary_suppression(
        cells, None, twice, threshold_k=3, value_col="v", unit_col="unit", dominance_k=100.0, p=0.0
    ).set_index("g")
    assert out2.loc["fine", "n_contributors"] == 1 and out2.loc["fine", "unsafe_threshold"]
    with pytest.raises(ValueError, match="negative contributions"):
        primary_suppression(cells, None, contrib.assign(v=-1.0), value_col="v")
    with pytest.raises(KeyError, match="no column 'x'"):
        primary_suppression(cells, None, contrib, value_col="x")


@pytest.fixture
def table() -> pd.DataFrame:
    interior = pd.DataFrame(
        [[20.0, 30, 50, 8], [40, 10, 25, 30], [15, 35, 60, 12]],
        index=["A", "B", "C"],
        columns=["w", "x", "y", "z"],
    )
    return add_margins(interior)


def mask_of(table: pd.DataFrame, cells: list[tuple[str, str]]) -> pd.DataFrame:
    m = pd.DataFrame(False, index=table.index, columns=table.columns)
    for r, c in cells:
        m.loc[r, c] = True
    return m


def test_audit_finds_a_lone_suppressed_cell_and_bounds_a_rectangle(table):
    prot = pd.DataFrame(0.0, index=table.index, columns=table.columns)
    prot.loc["A", "w"] = 5.0
    lone = audit_intervals(table, mask_of(table, [("A", "w")]), prot)
    row = lone.iloc[0]
    # the row total gives it away exactly
    assert (row["lower"], row["upper"]) == (20.0, 20.0)
    assert row["shortfall"] == pytest.approx(5.0) and not row["protected"]
    # a 2x2 rectangle: A.w = t, A.x = 50 - t, B.w = 60 - t, B.x = t - 10, all >= 0 -> t in [10, 50]
    rect = audit_intervals(
        table, mask_of(table, [("A", "w"), ("A", "x"), ("B", "w"), ("B", "x")]), prot
    )
    aw = rect[(rect["row"] == "A") & (rect["col"] == "w")].iloc[0]
    assert aw["lower"] == pytest.approx(10.0) and aw["upper"] == pytest.approx(50.0)
    assert rect["protected"].all()
    # non-negativity matters: without it the rectangle is unbounded
    free = audit_intervals(
        table,
        mask_of(table, [("A", "w"), ("A", "x"), ("B", "w"), ("B", "x")]),
        prot,
        nonnegative=False,
    )
    assert np.isinf(free["upper"]).all() and np.isinf(free["lower"]).all()


def test_secondary_suppression_fixes_a_recoverable_pattern(table):
    prot = pd.DataFrame(0.0, index=table.index, columns=table.columns)
    prot.loc["A", "w"] = 9.0
    primary = mask_of(table, [("A", "w")])
    assert (audit_intervals(table, primary, prot)["shortfall"] > 0).any()
    res = secondary_suppression(table, primary, prot)
    assert res.protected
    assert (res.audit["shortfall"] == 0).all()
    sup = res.suppressed.to_numpy()
    # every row and column holding a suppressed cell holds at least two
    for line in [*sup, *sup.T]:
        assert line.sum() != 1
    assert res.suppressed.loc["A", "w"] and not res.secondary.loc["A", "w"]
    # row partner: the smallest cell of row A that can carry 9 (A.z = 8 cannot) -> A.x = 30;
    # column partner: the smallest of column w -> C.w = 15; then C.x closes the rectangle
    assert res.suppressed.to_numpy().sum() == 4
    assert (
        res.secondary.loc["A", "x"] and res.secondary.loc["C", "w"] and res.secondary.loc["C", "x"]
    )
    aw = res.audit[(res.audit["row"] == "A") & (res.audit["col"] == "w")].iloc[0]
    assert aw["upper"] - 20.0 >= 9.0 and 20.0 - aw["lower"] >= 9.0


def test_secondary_suppression_uses_margins_when_the_table_is_thin():
    interior = pd.DataFrame([[5.0, 100.0]], index=["only"], columns=["a", "b"])
    table = add_margins(interior)
    prot = pd.DataFrame(0.0, index=table.index, columns=table.columns)
    prot.loc["only", "a"] = 1.0
    res = secondary_suppression(table, mask_of(table, [("only", "a")]), prot)
    # one interior row: its column totals repeat the cells, so they must go too
    assert res.protected
    assert res.suppressed.loc["Total", "a"]


def test_non_additive_table_is_rejected(table):
    broken = table.copy()
    broken.loc["A", "w"] += 1
    with pytest.raises(ValueError, match="not additive"):
        audit_intervals(broken, mask_of(broken, [("A", "w")]))


def test_protect_two_way_on_cps_wages():
    cps = load_cps1988()
    afam = cps[cps["ethnicity"] == "afam"].assign(education=lambda d: d["education"].astype(int))
    out = protect_two_way(
        afam, "region", "education", "wage", threshold_k=3, dominance_n=2, dominance_k=85, p=10
    )
    cells = out.cells
    assert out.protected
    assert cells["primary"].any() and cells["secondary"].any()
    assert cells.loc[cells["primary"], "suppressed"].all()
    assert (out.audit["shortfall"] == 0).all()
    # totals match the microdata and every suppressed cell is blank in the release
    assert out.table.loc["Total", "Total"] == pytest.approx(afam["wage"].sum())
    pub = out.published()
    assert pub.isna().equals(out.suppressed)
    # primary cells are the small ones: each has fewer than 3 contributors or is dominated
    flagged = cells[cells["primary"]]
    assert (
        (flagged["n_contributors"] < 3) | flagged["unsafe_dominance"] | flagged["unsafe_p"]
    ).all()
    # every suppressed cell's interval reaches its required protection on both sides
    a = out.audit
    assert (
        (a["upper_gap"] >= a["protection_required"] - 1e-6)
        & (a["lower_gap"] >= a["protection_required"] - 1e-6)
    ).all()
