"""The published-estimate rules of docs/estimation.md, run as the SQL the models compile (through
`dbt show --inline` on a DuckDB file holding the test data):

* a share interval never leaves [0, 1] (property test over random small samples: the direct
  Wilson interval with the design effective n, the empirical-logit interval of a finite domain,
  and the estimate macro's combined intervals over random small completed cells);
* the method rule picks the estimate with the lower MSE (worked example from the issue's domain:
  direct 653.6 with SE 39.4, augmented 729.7 with SE 14.2, truth 717.6), and the composite weight
  minimises the composite's MSE.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from calibrated_reference import stratified_variance, t975
from harness import run_dbt

from surveysynth.estimation import combining
from surveysynth.estimation.combining import share_interval, wilson_interval

RNG_SEED = 20261204
N_SAMPLES = 4000


def _show(work, sql: str) -> pd.DataFrame:
    res = run_dbt(
        work,
        command="show",
        extra_args=["--inline", sql, "--output", "json", "--limit", "-1", "--quiet"],
    )
    assert res.ok, res.output[-4000:]
    return pd.DataFrame(json.loads(res.output[res.output.index("{") :])["show"])


def random_direct_shares(rng: np.random.Generator, k: int) -> pd.DataFrame:
    """k random small samples (1-8 units in 1-3 strata, random weights and finite population
    corrections, shares of 0, 1 and in between): the share, its linearised SE, df and Kish n."""
    rows = []
    for _ in range(k):
        n = int(rng.integers(1, 9))
        strata = rng.integers(0, int(rng.integers(1, 4)), size=n)
        w = rng.gamma(2.0, 5.0, size=n) + 0.5
        p_true = rng.choice([0.0, 1.0, rng.uniform(), rng.uniform(0, 0.05)])
        y = (rng.uniform(size=n) < p_true).astype(float)
        n_pop = {str(h): int((strata == h).sum() + rng.integers(0, 40)) for h in np.unique(strata)}
        p = float((w * y).sum() / w.sum())
        z = w * (y - p) / w.sum()
        se = float(np.sqrt(max(stratified_variance(z, strata.astype(str), n_pop), 0.0)))
        df = max(n - len(np.unique(strata)), 1)
        rows.append(
            {
                "p": p,
                "se": se,
                "df": df,
                "n_kish": w.sum() ** 2 / (w**2).sum(),
                "tq": t975(df),
                "n_pop": sum(n_pop.values()),
            }
        )
    return pd.DataFrame(rows)


def random_completed_cells(rng: np.random.Generator, cells: int, m: int = 5) -> pd.DataFrame:
    """Stacked implicates of small completed cells (fpc 0): 0-3 real respondents repeated in every
    implicate and 1-6 synthetic records drawn per implicate, often all alike; plus one observed
    stratum per cell (fpc > 0), so that Barnard-Rubin's complete-data df is finite."""
    rows = []
    for c in range(cells):
        p = rng.choice([0.02, 0.5, 0.97, rng.uniform()])
        real = (rng.uniform(size=int(rng.integers(0, 4))) < p).astype(int)
        n_syn = int(rng.integers(1, 7))
        obs = (rng.uniform(size=int(rng.integers(1, 4))) < p).astype(int)
        w_obs = rng.gamma(2.0, 3.0, size=len(obs)) + 1.0
        for imp in range(1, m + 1):
            syn = (rng.uniform(size=n_syn) < p).astype(int)
            for v in real:
                rows.append((imp, f"g{c}", f"c{c}", 0.0, 1.0, False, int(v)))
            for v in syn:
                rows.append((imp, f"g{c}", f"c{c}", 0.0, 1.0, True, int(v)))
            for v, wv in zip(obs, w_obs):
                rows.append((imp, f"g{c}", f"o{c}", 0.5, float(wv), False, int(v)))
    return pd.DataFrame(rows, columns=["implicate", "g", "h", "fpc", "w", "is_syn", "y"])


METHOD_CASES = pd.DataFrame(
    [
        # case, V_d, M_a, rho, model share, composite considered
        ("issue_domain", 39.4**2, 14.2**2, 0.3, 0.7, True),
        ("direct_better", 1.0, 100.0, 0.3, 0.7, True),
        ("augmented_better_high_corr", 100.0, 1.0, 0.95, 0.9, True),
        ("equal_errors", 4.0, 4.0, 0.0, 0.5, True),
        ("no_model_part", 9.0, 1.0, 0.2, 0.0, True),
        ("margin_direct", 2.0, 3.0, 0.2, 0.1, False),
        ("margin_augmented", 3.0, 2.0, 0.2, 0.1, False),
    ],
    columns=["case_id", "v_d", "m_a", "rho", "model_share", "eligible"],
)


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    rng = np.random.default_rng(RNG_SEED)
    direct = random_direct_shares(rng, N_SAMPLES)
    # the empirical-logit interval at its edges too: q of 0 and 1, huge and zero RMSEs
    el = pd.DataFrame(
        {
            "q": np.concatenate([rng.uniform(size=2000), np.zeros(200), np.ones(200)]),
            "se": np.concatenate(
                [rng.exponential(0.2, 2000), rng.exponential(5.0, 200), np.zeros(200)]
            ),
            "tq": rng.choice([1.96, 2.78, 12.71], size=2400),
            "n_pop": rng.integers(1, 5000, size=2400),
        }
    )
    stacked = random_completed_cells(rng, 300)
    work = tmp_path_factory.mktemp("estimation_rules")
    with duckdb.connect(str(work / "warehouse.duckdb")) as con:
        for name, df in [
            ("direct_shares", direct),
            ("elogit", el),
            ("stacked", stacked),
            ("cases", METHOD_CASES),
        ]:
            con.register("df_in", df)
            con.sql(f"create table {name} as select * from df_in")
            con.unregister("df_in")
    wil = "surveysynth.share_interval_wilson('p', 'se', 'n_kish', 'tq')"
    eli = "surveysynth.share_interval_elogit('q', 'se', 'tq', 'n_pop')"
    elp = "surveysynth.share_interval_elogit('q', 'se', 'tq', 'n_pop', half_step=false)"
    intervals = _show(
        work,
        f"{{% set a = {wil} %}}{{% set b = {eli} %}}{{% set c = {elp} %}}"
        "select 'wilson' as kind, p as est, {{ a.lo }} as lo, {{ a.hi }} as hi, null as se, "
        "null as n_real, null as tq from main.direct_shares "
        "union all select 'elogit', q, {{ b.lo }}, {{ b.hi }}, se, n_pop, tq from main.elogit "
        "union all select 'elogit_published', q, {{ c.lo }}, {{ c.hi }}, se, n_pop, tq "
        "from main.elogit "
        "union all select 'estimate_macro', estimate, ci_low, ci_high, se, n_real, null from ("
        "{{ surveysynth.estimate('main.stacked', measure='share', column='y', level=1, group_by=['g'], "
        "rule='mi', weight='w', stratum='h', fpc='fpc', is_synthetic='is_syn') }}) as e",
    )
    phi = "surveysynth.composite_phi('v_d', 'm_a', 'rho', 'eligible')"
    methods = _show(
        work,
        f"select c.*, {{{{ surveysynth.method_choice('v_d', 'm_a', 'phi', 'model_share') }}}} as chosen, "
        "{{ surveysynth.composite_mse('phi', 'v_d', 'm_a', 'rho') }} as mse_composite "
        f"from (select cases.*, {{{{ {phi} }}}} as phi from main.cases) as c",
    )
    return intervals, methods.set_index("case_id")


def test_share_intervals_never_leave_0_1(shown):
    iv, _ = shown
    assert set(iv.kind) == {"wilson", "elogit", "elogit_published", "estimate_macro"}
    assert (iv.kind == "wilson").sum() == N_SAMPLES and (iv.kind == "estimate_macro").sum() == 300
    lo, hi, est = iv.lo.astype(float), iv.hi.astype(float), iv.est.astype(float)
    assert lo.notna().all() and hi.notna().all()
    assert ((lo >= 0) & (hi <= 1)).all(), iv[(lo < 0) | (hi > 1)].head()
    # and they hold the estimate (up to rounding)
    assert ((lo <= est + 1e-12) & (est <= hi + 1e-12)).all()
    # not degenerate where the sample says nothing: a direct share of 0 or 1 from a sample has width
    w = iv[iv.kind == "wilson"]
    edge = w[(w.est.astype(float) == 0) | (w.est.astype(float) == 1)]
    assert len(edge) > 500 and ((edge.hi.astype(float) - edge.lo.astype(float)) > 0.05).all()


def test_combined_share_of_0_or_1_without_variance_is_not_exact(shown):
    """Every implicate and every real answer alike (a share of 0 or 1, se 0) in a cell with units
    never observed: the combined interval is Wilson's with the real answers (SQL and Python)."""
    iv, _ = shown
    e = iv[iv.kind == "estimate_macro"].astype(
        {"est": float, "se": float, "lo": float, "hi": float}
    )
    flat = e[e.est.isin([0.0, 1.0]) & (e.se == 0)]
    assert len(flat) > 20  # the random cells hold many
    for r in flat.itertuples():
        lo, hi = wilson_interval(r.est, float(r.n_real), 1.959963984540054)
        assert (r.lo, r.hi) == pytest.approx((lo, hi), abs=1e-9)
        assert r.hi - r.lo > 0.1
        assert share_interval(r.est, 0.0, 1.959963984540054, 10**6, float(r.n_real)) == (
            pytest.approx((lo, hi), abs=1e-12)
        )
    # a census (every unit answered) stays exact
    assert share_interval(1.0, 0.0, 1.96, 4.0, 4.0) == (1.0, 1.0)


def test_elogit_interval_holds_the_share_lattice(shown, monkeypatch):
    """A share of N units is a multiple of 1/N: with an error (se > 0) each end of the combined
    (Rubin) empirical-logit interval moves out by half a step 1/(2N), the macro as the library;
    the published interval's (``half_step=false``) does not. A domain of 4 units whose share is 0,
    estimated at 0.1: the interval reaches 0 only with the half step."""
    iv, _ = shown
    for kind, half in (("elogit", True), ("elogit_published", False)):
        el = iv[iv.kind == kind]
        assert len(el) == 2400
        for r in el.itertuples():
            ends = share_interval(
                float(r.est), float(r.se), float(r.tq), float(r.n_real), half_step=half
            )
            assert (float(r.lo), float(r.hi)) == pytest.approx(ends, abs=1e-9)
    lo_q, hi_q = share_interval(0.1, 0.05, 1.96, 4.0)
    assert lo_q == 0.0
    lo_c, hi_c = share_interval(0.1, 0.05, 1.96, 4.0, half_step=False)
    assert lo_c > 0.0 and hi_q == pytest.approx(min(1.0, hi_c + 1 / 8), abs=1e-12)
    # no half step without an error (a census stays exact), however small N
    assert share_interval(0.25, 0.0, 1.96, 4.0) == pytest.approx((0.25, 0.25), abs=1e-12)
    # the step is the constant's
    monkeypatch.setattr(combining, "LATTICE_HALF_STEP", 0.0)
    assert share_interval(0.1, 0.05, 1.96, 4.0) == (lo_c, hi_c)


def _mse(phi, v_d, m_a, rho):
    return phi**2 * v_d + (1 - phi) ** 2 * m_a + 2 * phi * (1 - phi) * rho * np.sqrt(v_d * m_a)


def test_method_rule_picks_the_lower_mse(shown):
    _, m = shown
    grid = np.linspace(0, 1, 100001)
    for case, r in m.iterrows():
        v_d, m_a, rho = float(r.v_d), float(r.m_a), float(r.rho)
        mses = {"direct": v_d, "augmented": m_a}
        if r.phi is not None and not pd.isna(r.phi):
            # phi minimises the composite's MSE over [0, 1]
            best = grid[np.argmin(_mse(grid, v_d, m_a, rho))]
            assert float(r.phi) == pytest.approx(best, abs=1e-4), case
            assert float(r.mse_composite) == pytest.approx(_mse(float(r.phi), v_d, m_a, rho))
            mses["composite"] = float(r.mse_composite)
        if float(r.model_share) == 0:
            assert r.chosen == "direct", case  # the same respondents, no model: direct
            continue
        chosen_mse = mses[r.chosen]
        assert chosen_mse <= min(mses.values()) + 1e-9, (case, r.chosen, mses)


def test_issue_domain_worked_example(shown):
    """direct 653.6 (SE 39.4) and augmented 729.7 (SE 14.2), truth 717.6: the rule leans on the
    augmented estimate (phi about 0.05 with rho 0.3) and its error is far below the direct one's."""
    _, m = shown
    r = m.loc["issue_domain"]
    assert r.chosen == "composite"
    phi = float(r.phi)
    assert 0 < phi < 0.15
    est = phi * 653.6 + (1 - phi) * 729.7
    assert abs(est - 717.6) < abs(653.6 - 717.6) / 4
    assert np.sqrt(float(r.mse_composite)) < 14.2
    assert m.loc["direct_better"].chosen == "direct"
    assert m.loc["augmented_better_high_corr"].chosen == "augmented"
    assert (
        m.loc["margin_direct"].chosen == "direct"
        and m.loc["margin_augmented"].chosen == "augmented"
    )


def test_composite_corr_counts_the_respondents_both_estimates_share(tmp_path):
    """The augmented mean of a completed cell counts its respondents with the weight 1 - s, so its
    error shares at least (1 - s) V_d with the direct one's: the correlation the composite uses is
    at least (1 - s) sqrt(V_d / M_a), whatever the back-test measured (0 where it measured none).
    Where the records' part is independent of the respondents (a = (1 - s) d + s m) that floor is
    the exact correlation, and the composite's stated MSE is its true MSE, checked by simulation;
    with rho 0 it would be stated far too small."""
    v_d, m_a, s = 906.0**2, 1047.0**2, 0.55
    cases = (
        "('unmeasured', null, 0.55, 906e0 * 906e0, 1047e0 * 1047e0),"
        " ('measured_above', 0.6, 0.55, 906e0 * 906e0, 1047e0 * 1047e0),"
        " ('no_respondents', null, 1.0, 4.0, 1.0), ('capped', 0.1, 0.0, 100.0, 1.0)"
    )
    corr = "surveysynth.composite_corr('rho', 's', 'v_d', 'm_a')"
    out = _show(
        tmp_path,
        f"select c, {{{{ {corr} }}}} as corr, "
        f"{{{{ surveysynth.composite_phi('v_d', 'm_a', {corr}) }}}} as phi "
        f"from (values {cases}) as t(c, rho, s, v_d, m_a)",
    ).set_index("c")
    floor = (1 - s) * np.sqrt(v_d / m_a)
    assert float(out.loc["unmeasured", "corr"]) == pytest.approx(floor)
    assert float(out.loc["measured_above", "corr"]) == pytest.approx(0.6)
    assert float(out.loc["no_respondents", "corr"]) == 0.0
    assert float(out.loc["capped", "corr"]) == pytest.approx(0.95)
    # the simulation: d = theta + e_d, records' part m = theta + e_m independent of e_d
    rng = np.random.default_rng(7)
    v_m = (m_a - (1 - s) ** 2 * v_d) / s**2
    e_d = rng.normal(0, np.sqrt(v_d), 400_000)
    e_a = (1 - s) * e_d + s * rng.normal(0, np.sqrt(v_m), 400_000)
    phi = float(out.loc["unmeasured", "phi"])
    assert 0.0 < phi < 1.0
    true_mse = float(np.mean((phi * e_d + (1 - phi) * e_a) ** 2))
    assert _mse(phi, v_d, m_a, floor) == pytest.approx(true_mse, rel=0.01)
    assert _mse(phi, v_d, m_a, 0.0) < 0.8 * true_mse  # what rho 0 stated


def test_wilson_ends_are_exact_at_0_and_1(shown):
    """At p = 0 the lower end is 0 and at p = 1 the upper end is 1 exactly (centre - half left a
    residue of 1e-17, and the estimate fell outside its own interval): SQL and Python."""
    iv, _ = shown
    w = iv[iv.kind == "wilson"].astype({"est": float, "lo": float, "hi": float})
    zero, one = w[w.est == 0.0], w[w.est == 1.0]
    assert len(zero) > 100 and len(one) > 100
    assert (zero.lo == 0.0).all() and (one.hi == 1.0).all()
    for n in range(1, 60):
        assert wilson_interval(0.0, n, 1.96)[0] == 0.0 and wilson_interval(1.0, n, 1.96)[1] == 1.0


def test_combine_arrays_reads_within_variances_as_the_macro_does():
    """A within variance below 0 (a rounding residue) or missing counts as 0, as in the estimate
    macro; a share of 0 with no variance gets Wilson's interval with its real answers."""
    r = combining.combine_arrays(np.full(5, 0.4), np.array([-1e-20, 0.0, 0.0, 0.0, 0.0]))
    assert r["se"] == 0.0 and (r["ci_low"], r["ci_high"]) == (0.4, 0.4)
    r = combining.combine_arrays(np.array([1.0, 2.0, 3.0]), np.array([0.3, np.nan, 0.3]))
    assert r["ubar"] == pytest.approx(0.2)
    flat = combining.combine_arrays(np.zeros(5), share_n=100.0, n_real=3.0)
    z = 1.959963984540054  # b = 0 and no observed part: the normal quantile
    assert (flat["ci_low"], flat["ci_high"]) == pytest.approx(wilson_interval(0.0, 3.0, z))


def test_complete_data_df_of_0_is_at_least_1(tmp_path):
    """Two observed units, each alone in its stratum: n - H = 0. Read as infinite, it gave a
    normal interval from a variance with no degrees of freedom; as the direct estimate's floor
    (max(n - H, 1)) the interval takes t with 1 df (SQL and Python)."""
    rows = [
        (imp, "g", h, 0.5, 1.0, False, y) for imp in range(1, 6) for h, y in (("a", 1), ("b", 3))
    ]
    df_in = pd.DataFrame(rows, columns=["implicate", "g", "h", "fpc", "w", "is_syn", "y"])
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.register("df_in", df_in)
        con.sql("create table lonely as select * from df_in")
    out = _show(
        tmp_path,
        "select estimate, se, ci_low, ci_high from ({{ surveysynth.estimate('main.lonely', "
        "measure='mean', column='y', group_by=['g'], rule='mi', weight='w', stratum='h', "
        "fpc='fpc', is_synthetic='is_syn') }}) as e",
    ).astype(float)
    est, se = float(out.estimate.iloc[0]), float(out.se.iloc[0])
    assert est == pytest.approx(2.0) and se > 0
    t1 = 12.706204736174694
    assert float(out.ci_high.iloc[0]) == pytest.approx(est + t1 * se, rel=2e-3)
    py = combining.combine_arrays(np.full(5, est), np.full(5, se * se), df_com=0.0)
    assert py["ci_high"] == pytest.approx(est + t1 * se, rel=1e-9)
