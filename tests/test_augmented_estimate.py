"""The `estimate` macro against an independent Python implementation of the combining rules
(surveysynth.estimation.combining) on a small worked example, and its t quantile against scipy.

The macro runs through `dbt show --inline` on a DuckDB file holding the worked example, so what is
tested is the SQL an analyst's model would compile."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from harness import run_dbt
from scipy import stats

from surveysynth.estimation.combining import (
    between_variance,
    combine_arrays,
    implicate_estimates,
    t_quantile,
)

M = 3


def worked_example() -> pd.DataFrame:
    """Two domains over four strata, three implicates.

    Domain A: an observed stratum s1 (fpc 0.6, real records identical in every implicate) and a
    completed cell c1 (fpc 0: real records plus synthetic ones that differ between implicates).
    Domain B: an observed stratum s2 and a lonely observed unit (s3, n_h = 1), plus two synthetic
    records that differ only slightly between implicates (the full-synthesis rule's T <= 0 case).
    Some answers are missing; weights vary."""
    rng = np.random.default_rng(7)
    rows = []
    for imp in range(1, M + 1):
        for i, (y, cat, w) in enumerate(
            [(3.0, "a", 10.0), (5.0, "b", 12.0), (None, "a", 8.0), (4.5, None, 9.0)]
        ):
            rows.append(
                {
                    "implicate": imp,
                    "g": "A",
                    "h": "s1",
                    "fpc": 0.6,
                    "w": w,
                    "is_syn": False,
                    "y": y,
                    "cat": cat,
                    "uid": f"r{i}",
                }
            )
        for i, (y, cat) in enumerate([(7.0, "a"), (1.0, "b")]):
            rows.append(
                {
                    "implicate": imp,
                    "g": "A",
                    "h": "c1",
                    "fpc": 0.0,
                    "w": 1.0,
                    "is_syn": False,
                    "y": y,
                    "cat": cat,
                    "uid": f"c{i}",
                }
            )
        for i in range(5):
            y = float(np.round(rng.normal(4 + imp, 2), 3))
            cat = "a" if rng.random() < 0.3 + 0.1 * imp else "b"
            rows.append(
                {
                    "implicate": imp,
                    "g": "A",
                    "h": "c1",
                    "fpc": 0.0,
                    "w": 1.5,
                    "is_syn": True,
                    "y": y,
                    "cat": cat,
                    "uid": f"s{i}",
                }
            )
        for i, (y, cat, w) in enumerate([(2.0, "a", 5.0), (6.0, "a", 5.0), (2.5, "b", 7.0)]):
            rows.append(
                {
                    "implicate": imp,
                    "g": "B",
                    "h": "s2",
                    "fpc": 0.25,
                    "w": w,
                    "is_syn": False,
                    "y": y,
                    "cat": cat,
                    "uid": f"b{i}",
                }
            )
        rows.append(
            {
                "implicate": imp,
                "g": "B",
                "h": "s3",
                "fpc": 0.5,
                "w": 20.0,
                "is_syn": False,
                "y": 9.0,
                "cat": "b",
                "uid": "lonely",
            }
        )
        for i in range(2):
            rows.append(
                {
                    "implicate": imp,
                    "g": "B",
                    "h": "s4",
                    "fpc": 0.0,
                    "w": 1.0,
                    "is_syn": True,
                    "y": 3.0 + 1e-3 * imp * (i + 1),
                    "cat": "a",
                    "uid": f"t{i}",
                }
            )
        rows.extend(_residue_domain(imp, rng))
    return pd.DataFrame(rows)


def _residue_domain(imp: int, rng: np.random.Generator) -> list[dict]:
    """Domain C: an observed stratum whose three weighted answers w y are all 0.1, so the design
    variance of its total is a rounding residue (their mean in floating point is not exactly 0.1),
    beside a completed cell whose synthetic records differ between implicates."""
    base = {"implicate": imp, "g": "C", "w": 1.0}
    rows = [
        {**base, "h": "s5", "fpc": 0.5, "is_syn": False, "y": 0.1, "cat": c, "uid": f"e{i}"}
        for i, c in enumerate("aba")
    ]
    rows += [
        {
            **base,
            "h": "c2",
            "fpc": 0.0,
            "is_syn": True,
            "y": float(np.round(rng.normal(2 + imp, 1), 3)),
            "cat": "a" if rng.random() < 0.5 else "b",
            "uid": f"f{i}",
        }
        for i in range(3)
    ]
    return rows


# case id -> (macro arguments, python arguments)
CASES = {
    "mean_mi": (
        "measure='mean', column='y', group_by=['g'], rule='mi'",
        {"measure": "mean", "y": "y", "rule": "mi"},
    ),
    "share_mi": (
        "measure='share', column='cat', level='a', group_by=['g'], rule='mi'",
        {"measure": "share", "y": "cat", "level": "a", "rule": "mi"},
    ),
    "total_partial": (
        "measure='total', column='y', group_by=['g'], rule='partial'",
        {"measure": "total", "y": "y", "rule": "partial"},
    ),
    "total_mi": (
        "measure='total', column='y', group_by=['g'], rule='mi'",
        {"measure": "total", "y": "y", "rule": "mi"},
    ),
    "mean_full_90": (
        "measure='mean', column='y', group_by=['g'], rule='full', conf_level=0.9",
        {"measure": "mean", "y": "y", "rule": "full", "conf": 0.9},
    ),
    "mean_where": (
        "measure='mean', column='y', group_by=['g'], rule='mi', where=\"h <> 's1'\"",
        {"measure": "mean", "y": "y", "rule": "mi", "where": "s1"},
    ),
    "share_overall": (
        "measure='share', column='cat', level='b', group_by=[], rule='mi'",
        {"measure": "share", "y": "cat", "level": "b", "rule": "mi", "overall": True},
    ),
}

COMMON = "weight='w', stratum='h', fpc='fpc', is_synthetic='is_syn'"


def python_reference(
    df: pd.DataFrame,
    measure: str,
    y: str,
    rule: str,
    level=None,
    conf=0.95,
    where=None,
    overall=False,
) -> pd.DataFrame:
    d = df.copy()
    if where is not None:  # units outside the domain keep their place in the strata
        d[y] = d[y].where(d["h"] != where)
    by = ["_all"] if overall else ["g"]
    d["_all"] = "all"
    q = implicate_estimates(d, y, measure, by, weight="w", stratum="h", fpc="fpc", level=level)
    out = []
    for key, grp in q.groupby(by):
        res = combine_arrays(
            grp["q"].to_numpy(),
            grp["u"].to_numpy(),
            rule,
            conf,
            df_com=float(grp["df_com"].max()) if grp["df_com"].max() > 0 else np.inf,
            share_n=float(grp["sw"].mean()) if measure == "share" else None,
        )
        out.append({"g": key[0] if isinstance(key, tuple) else key, **res})
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def macro_results(tmp_path_factory) -> pd.DataFrame:
    work = tmp_path_factory.mktemp("estimate_macro")
    with duckdb.connect(str(work / "warehouse.duckdb")) as con:
        con.register("w_df", worked_example())
        con.sql("create table worked as select * from w_df")
        con.sql(
            "create table dfs as select * from (values (1.0), (1.2), (1.5), (1.9), (1.999999), (2.0), (2.5), (3.0), (4.0), (4.7), (7.0),"
            " (12.0), (30.0), (100.0), (1000.0), (1e6), (null)) as t(df)"
        )
    parts = []
    for case, (args, _) in CASES.items():
        g = "'all'" if "group_by=[]" in args else "g"
        parts.append(
            f"select '{case}' as case_id, {g} as g, indicator, measure, estimate, se, ci_low, ci_high, df, m, "
            f"between_var, within_var, combining_rule, n_real, n_synthetic, df_com "
            f"from ({{{{ surveysynth.estimate('main.worked', {args}, {COMMON}) }}}}) as e_{case}"
        )
    sql = " union all ".join(parts)
    res = run_dbt(
        work,
        command="show",
        extra_args=["--inline", sql, "--output", "json", "--limit", "-1", "--quiet"],
    )
    assert res.ok, res.output[-4000:]
    rows = json.loads(res.output[res.output.index("{") :])["show"]
    quant = run_dbt(
        work,
        command="show",
        extra_args=[
            "--inline",
            (
                "select df, p, es_tq from ("
                "{{ surveysynth._t_quantile_select('(select df, 0.05 as p from main.dfs)', 'df', 0.05, 1.959963984540054) }}"
                ") as a union all select df, p, es_tq from ("
                "{{ surveysynth._t_quantile_select('(select df, 0.1 as p from main.dfs)', 'df', 0.1, 1.6448536269514722) }}"
                ") as b"
            ),
            "--output",
            "json",
            "--limit",
            "-1",
            "--quiet",
        ],
    )
    assert quant.ok, quant.output[-4000:]
    q = json.loads(quant.output[quant.output.index("{") :])["show"]
    return pd.DataFrame(rows), pd.DataFrame(q)


@pytest.mark.parametrize("case", list(CASES))
def test_macro_equals_python_combining_rules(macro_results, case):
    got = macro_results[0]
    got = got[got.case_id == case].sort_values("g").reset_index(drop=True)
    _, kw = CASES[case]
    ref = python_reference(worked_example(), **kw).sort_values("g").reset_index(drop=True)
    assert list(got.g) == list(ref.g)
    for col in ("estimate", "se", "m"):
        np.testing.assert_allclose(
            got[col].astype(float),
            ref[col].astype(float),
            rtol=1e-9,
            atol=1e-12,
            err_msg=f"{case}: {col}",
        )
    np.testing.assert_allclose(got["between_var"].astype(float), ref["b"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got["within_var"].astype(float), ref["ubar"], rtol=1e-9, atol=1e-15)
    # df: null in SQL means infinite
    gdf = got["df"].astype(float).fillna(np.inf).to_numpy()
    np.testing.assert_allclose(gdf, ref["df"].to_numpy(), rtol=1e-9)
    # intervals: the SQL t quantile is Hill's approximation (relative error < 5e-4)
    for col in ("ci_low", "ci_high"):
        half_got = (got[col].astype(float) - got["estimate"].astype(float)).abs()
        half_ref = (ref[col] - ref["estimate"]).abs()
        np.testing.assert_allclose(
            half_got, half_ref, rtol=5e-4, atol=1e-12, err_msg=f"{case}: {col}"
        )


def test_worked_example_exercises_every_branch(macro_results):
    got = macro_results[0]
    mean_mi = got[got.case_id == "mean_mi"].set_index("g")
    # A mixes a completed cell (b > 0) with an observed stratum (u > 0): Rubin's T = u + (1 + 1/m) b
    a = mean_mi.loc["A"]
    assert a.between_var > 0 and a.within_var > 0
    assert a.se**2 == pytest.approx(a.within_var + (1 + 1 / M) * a.between_var)
    full = got[got.case_id == "mean_full_90"].set_index("g")
    # B: (1 + 1/m) b < u_bar, so the full-synthesis rule falls back to u_bar with a normal reference
    b = full.loc["B"]
    assert b.se**2 == pytest.approx(b.within_var) and pd.isna(b.df)
    assert set(got.combining_rule) == {"mi", "partial", "full"}
    assert (got.n_synthetic.astype(int) > 0).all()


def test_rounding_residue_within_variance_counts_as_zero(macro_results):
    """Domain C's mean has a u_bar that is a rounding residue: taken at face value 1 - lambda is 0,
    so Barnard-Rubin's df_obs = 0 and df = 0 (t_1 = 12.7; PostgreSQL divides by zero). Read as 0,
    df = df_old = m - 1."""
    got = macro_results[0]
    c = got[(got.case_id == "mean_mi") & (got.g == "C")].iloc[0]
    assert 0 < float(c.within_var) < 1e-12 * float(c.between_var)
    assert float(c.df) == pytest.approx(M - 1, rel=1e-9)
    half = (float(c.ci_high) - float(c.ci_low)) / 2
    assert half == pytest.approx(stats.t.ppf(0.975, M - 1) * float(c.se), rel=5e-4)


def test_completed_cell_alone_gives_t_with_m_minus_1_df(macro_results):
    """A domain that is only a completed cell has u_bar = 0: T = (1 + 1/m) b, df = m - 1."""
    df = worked_example()
    only = df[df.h == "c1"]
    res = combine_arrays(
        implicate_estimates(only, "y", "mean", ["g"], weight="w", stratum="h", fpc="fpc")[
            "q"
        ].to_numpy(),
        None,
        "mi",
    )
    assert res["df"] == pytest.approx(M - 1)
    assert res["total_var"] == pytest.approx((1 + 1 / M) * res["b"])


def test_sql_t_quantile_matches_scipy(macro_results):
    q = macro_results[1]
    for _, r in q.iterrows():
        p = float(r.p)
        df = r.df
        exact = (
            stats.norm.ppf(1 - p / 2)
            if df is None or pd.isna(df)
            else stats.t.ppf(1 - p / 2, float(df))
        )
        if df is not None and not pd.isna(df) and 1 < float(df) < 2:
            # documented: (1, 2) interpolates ln t in 1 / df, conservative and within 4%
            assert exact <= float(r.es_tq) <= 1.04 * exact, (df, p)
            exact = float(t_quantile(float(df), 1 - p))
        assert float(r.es_tq) == pytest.approx(exact, rel=5e-4), (df, p)


def test_t_quantile_has_no_jump_at_two_df():
    """Just below df = 2 the quantile is t_2 (it was t_1, three times wider, before)."""
    for conf in (0.8, 0.9, 0.95, 0.99):
        below, at = t_quantile(np.array([2 - 1e-9, 2.0]), conf)
        assert below == pytest.approx(at, rel=1e-6)
        grid = t_quantile(np.linspace(1.0, 3.0, 201), conf)
        assert np.all(np.diff(grid) <= 1e-12), conf


def test_between_variance_reads_a_rounding_residue_as_zero():
    """Implicates equal but for the last bits (sums taken in another order) have b = 0, so df is
    infinite on every engine; a real spread, however small against the estimate, and a missing
    implicate estimate are kept."""
    q = np.array([0.1 + 0.2, 0.3, 0.30000000000000004, 0.3])
    assert q.var(ddof=1) > 0 and between_variance(q) == 0.0
    real = np.array([1e6, 1e6 + 1e-2, 1e6 - 1e-2])
    assert between_variance(real) == pytest.approx(real.var(ddof=1))
    assert np.isnan(between_variance(np.array([1.0, np.nan, 2.0])))
    res = combine_arrays(q, np.zeros(4), "mi")
    assert res["b"] == 0.0 and np.isinf(res["df"])
