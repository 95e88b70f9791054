"""Unit-level baselines (surveysynth.estimation.unit_level) against closed forms, independent
dense computations and simulated truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize
from scipy.special import expit
from scipy.stats import norm

from surveysynth.estimation import unit_level as ul


# ----------------------------------------------------------------------------- simulated worlds
def population(rng, m, n_lo, n_hi, beta, s2v, s2e=None, logistic=False, N=(40, 200)):
    """Finite population of m domains (x1 continuous with a domain-level shift, x2 binary) and a
    simple random sample of n_lo..n_hi units per domain (0 allowed)."""
    Ns = rng.integers(N[0], N[1], m)
    dom = np.repeat(np.arange(m), Ns)
    x1 = rng.normal(size=dom.size) + 0.5 * rng.normal(size=m)[dom]
    x2 = rng.binomial(1, 0.4, dom.size).astype(float)
    eta = beta[0] + beta[1] * x1 + beta[2] * x2 + rng.normal(0, np.sqrt(s2v), m)[dom]
    if logistic:
        y = (rng.random(dom.size) < expit(eta)).astype(float)
    else:
        y = eta + rng.normal(0, np.sqrt(s2e), dom.size)
    units = pd.DataFrame({"area": dom, "x1": x1, "x2": x2, "y": y})
    n = rng.integers(n_lo, n_hi + 1, m)
    rank = pd.Series(rng.random(dom.size)).groupby(dom).rank(method="first").to_numpy()
    sample = units[rank <= n[dom]].reset_index(drop=True)
    return units, sample


def domain_means(units):
    g = units.groupby("area")
    out = g[["x1", "x2"]].mean()
    out["N"] = g.size()
    out["truth"] = g["y"].mean()
    return out.reset_index()


def direct_means(sample, m):
    return sample.groupby("area")["y"].mean().reindex(range(m)).to_numpy()


# ----------------------------------------------------------------------------- BHF: closed forms
def tiny(weighted):
    """Three sampled domains and one without sample; y, x1 and w made up by hand."""
    sample = pd.DataFrame(
        {
            "area": ["a", "a", "a", "b", "b", "c", "c", "c", "c"],
            "x1": [1.0, 2.0, 0.5, 3.0, 2.5, 0.0, 1.5, 1.0, 2.0],
            "y": [2.1, 3.9, 1.2, 6.5, 5.0, 0.4, 3.1, 2.6, 4.4],
            "w": [1.0, 3.0, 2.0, 1.5, 1.5, 4.0, 1.0, 2.0, 0.5] if weighted else [1.0] * 9,
        }
    )
    pop = pd.DataFrame({"area": ["a", "b", "c", "d"], "N": [10, 4, 30, 12]})
    pop["x1"] = [1.4, 2.6, 1.1, 2.0]
    return sample, pop


def dense_bhf(sample, pop, s2v, s2e):
    """The (pseudo-)BLUP of each domain's finite-population mean written out with dense matrices
    and loops, and its exact MSE as a linear predictor a'y_s of the model's joint covariance."""
    dom = sample["area"].to_numpy()
    X = np.column_stack([np.ones(len(sample)), sample["x1"]])
    y, w = sample["y"].to_numpy(), sample["w"].to_numpy()
    V = s2e * np.eye(len(y)) + s2v * (dom[:, None] == dom[None, :])
    gam, xw = {}, {}
    for a in np.unique(dom):  # You & Rao weighted domain means and shrinkage
        s = dom == a
        delta = np.sum(w[s] ** 2) / np.sum(w[s]) ** 2
        gam[a] = s2v / (s2v + s2e * delta)
        xw[a] = w[s] @ X[s] / w[s].sum()
    Z = X - np.array([gam[a] * xw[a] for a in dom])
    A = (Z * w[:, None]).T @ X
    L_beta = np.linalg.solve(A, (Z * w[:, None]).T)  # beta = L_beta @ y
    rows = []
    for _, r in pop.iterrows():
        a, N = r["area"], r["N"]
        s = dom == a
        n = s.sum()
        xbar = np.array([1.0, r["x1"]])
        xr = (N * xbar - X[s].sum(0)) / (N - n)
        g = gam.get(a, 0.0)
        # v_hat = g (yw - xw' beta), linear in y
        l_v = np.zeros(len(y))
        if n:
            l_v[s] = g * w[s] / w[s].sum()
            l_v -= g * xw[a] @ L_beta
        l = s / N + (N - n) / N * (xr @ L_beta + l_v)
        est = l @ y
        # error = (l - 1_s / N)' y_s - (N - n) / N (xr' beta + v_a + ebar_r)
        c = l - s / N
        k = (N - n) / N
        mse = c @ V @ c - 2 * k * s2v * c[s].sum() + k**2 * (s2v + s2e / (N - n))
        rows.append((est, mse))
    return np.array(rows)


@pytest.mark.parametrize("weighted", [False, True])
def test_bhf_known_components_equal_dense_closed_form(weighted):
    sample, pop = tiny(weighted)
    w = "w" if weighted else None
    out = ul.bhf_eblup_fixed(sample, "y", ["x1"], "area", pop, s2v=0.7, s2e=1.3, weight=w)
    ref = dense_bhf(sample, pop, 0.7, 1.3)
    np.testing.assert_allclose(out["estimate"], ref[:, 0], rtol=1e-10)
    np.testing.assert_allclose(out["mse"], ref[:, 1], rtol=1e-10)
    assert out["n"].tolist() == [3, 2, 4, 0]


def test_bhf_unweighted_gls_beta_and_equal_weights():
    """Without weights beta is GLS; constant weights give the same estimator."""
    sample, pop = tiny(False)
    out = ul.bhf_eblup_fixed(sample, "y", ["x1"], "area", pop, s2v=0.7, s2e=1.3)
    dom = sample["area"].to_numpy()
    X = np.column_stack([np.ones(len(sample)), sample["x1"]])
    Vi = np.linalg.inv(1.3 * np.eye(len(dom)) + 0.7 * (dom[:, None] == dom[None, :]))
    gls = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ sample["y"].to_numpy())
    np.testing.assert_allclose(list(out.attrs["beta"].values()), gls, rtol=1e-10)
    same = ul.bhf_eblup_fixed(sample.assign(w=2.5), "y", "x1", "area", pop, 0.7, 1.3, weight="w")
    np.testing.assert_allclose(same["estimate"], out["estimate"], rtol=1e-12)
    np.testing.assert_allclose(same["mse"], out["mse"], rtol=1e-12)


def test_bhf_zero_s2v_is_synthetic_regression():
    sample, pop = tiny(False)
    out = ul.bhf_eblup_fixed(sample, "y", ["x1"], "area", pop, s2v=0.0, s2e=1.3)
    X = np.column_stack([np.ones(len(sample)), sample["x1"]])
    ols = np.linalg.lstsq(X, sample["y"], rcond=None)[0]
    sums = sample.groupby("area")[["y", "x1"]].sum().reindex(pop["area"]).fillna(0.0)
    N, xbar = pop["N"].to_numpy(), pop["x1"].to_numpy()
    n = np.array([3, 2, 4, 0])
    rest = (N - n) * ols[0] + (N * xbar - sums["x1"].to_numpy()) * ols[1]
    np.testing.assert_allclose(out["estimate"], (sums["y"].to_numpy() + rest) / N, rtol=1e-10)
    # an (almost) infinite population: the regression synthetic estimator xbar' beta_OLS
    big = ul.bhf_eblup_fixed(sample, "y", ["x1"], "area", pop.assign(N=1e12), 0.0, 1.3)
    np.testing.assert_allclose(big["estimate"], ols[0] + ols[1] * xbar, rtol=1e-9)


def test_bhf_reml_maximises_dense_restricted_likelihood():
    rng = np.random.default_rng(5)
    units, sample = population(rng, 25, 1, 6, (1.0, 2.0, -1.0), s2v=0.6, s2e=1.5)
    out = ul.bhf_eblup(sample, "y", ["x1", "x2"], "area", domain_means(units))
    dom = sample["area"].to_numpy()
    X = np.column_stack([np.ones(len(dom)), sample[["x1", "x2"]]])
    y, same = sample["y"].to_numpy(), (dom[:, None] == dom[None, :]).astype(float)

    def neg_reml(t):
        V = np.exp(t[1]) * np.eye(len(y)) + np.exp(t[0]) * same
        Vi = np.linalg.inv(V)
        XVX = X.T @ Vi @ X
        P = Vi - Vi @ X @ np.linalg.solve(XVX, X.T @ Vi)
        return 0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XVX)[1] + y @ P @ y)

    res = optimize.minimize(neg_reml, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-8})
    np.testing.assert_allclose([out.attrs["s2v"], out.attrs["s2e"]], np.exp(res.x), rtol=1e-4)


def test_bhf_recovers_simulated_components():
    rng = np.random.default_rng(11)
    units, sample = population(rng, 500, 3, 12, (1.0, 2.0, -1.0), s2v=0.5, s2e=2.0)
    out = ul.bhf_eblup(sample, "y", ["x1", "x2"], "area", domain_means(units))
    assert abs(out.attrs["s2v"] - 0.5) < 0.12
    assert abs(out.attrs["s2e"] - 2.0) < 0.12
    np.testing.assert_allclose(list(out.attrs["beta"].values()), [1.0, 2.0, -1.0], atol=0.1)


def test_bhf_beats_direct_and_intervals_cover():
    rng = np.random.default_rng(3)
    err_bhf, err_dir, covered, unsampled = [], [], [], []
    for _ in range(8):
        units, sample = population(rng, 100, 0, 8, (1.0, 2.0, -1.0), s2v=0.3, s2e=2.0)
        dm = domain_means(units)
        out = ul.bhf_eblup(sample, "y", ["x1", "x2"], "area", dm.drop(columns="truth"))
        truth = dm["truth"].to_numpy()
        err_bhf.append(out["estimate"] - truth)
        err_dir.append(direct_means(sample, 100) - truth)
        covered.append((out["ci_low"] <= truth) & (truth <= out["ci_high"]))
        beta = np.array(list(out.attrs["beta"].values()))
        no = out["n"].to_numpy() == 0
        synthetic = beta[0] + dm.loc[no, ["x1", "x2"]].to_numpy() @ beta[1:]
        unsampled.append(out["estimate"][no] / synthetic - 1.0)
    e_bhf, e_dir = np.concatenate(err_bhf), np.concatenate(err_dir)
    ok = np.isfinite(e_dir)  # direct exists only where sampled
    ratio = np.sqrt(np.mean(e_bhf[ok] ** 2) / np.mean(e_dir[ok] ** 2))
    assert ratio < 0.5, ratio
    coverage = np.concatenate(covered).mean()
    assert 0.88 <= coverage <= 0.99, coverage
    np.testing.assert_allclose(np.concatenate(unsampled), 0.0, atol=1e-12)  # xbar' beta


def test_bhf_input_errors_name_the_problem():
    sample, pop = tiny(False)
    with pytest.raises(ValueError, match="absent from the population"):
        ul.bhf_eblup(sample, "y", "x1", "area", pop[pop.area != "a"])
    with pytest.raises(ValueError, match="N must be"):
        ul.bhf_eblup(sample, "y", "x1", "area", pop.assign(N=2))
    with pytest.raises(ValueError, match="'x1' has 1 missing"):
        ul.bhf_eblup(sample.assign(x1=sample.x1.where(sample.y > 1)), "y", "x1", "area", pop)
    # the population's domain column may also be called 'domain'; both names are in the output
    out = ul.bhf_eblup(sample, "y", "x1", "area", pop.rename(columns={"area": "domain"}))
    assert out.columns[:2].tolist() == ["domain", "area"]


# ----------------------------------------------------------------------------- logistic EBP
def small_logit():
    rng = np.random.default_rng(8)
    units, sample = population(rng, 6, 4, 12, (-0.3, 1.2, 0.5), s2v=0.8, logistic=True, N=(20, 30))
    return units, sample


def quad_loglik(theta, sample):
    """Marginal log-likelihood by scipy's adaptive quadrature, one domain at a time."""
    beta, sigma = theta[:-1], theta[-1]
    total = 0.0
    for _, g in sample.groupby("area"):
        eta = beta[0] + g[["x1", "x2"]].to_numpy() @ beta[1:]
        y = g["y"].to_numpy()

        def f(u, eta=eta, y=y):
            p = expit(eta + sigma * u)
            return np.prod(np.where(y == 1, p, 1 - p)) * norm.pdf(u)

        total += np.log(integrate.quad(f, -12, 12, epsabs=0, epsrel=1e-12, limit=200)[0])
    return total


def test_logit_quadrature_likelihood_gradient_hessian():
    units, sample = small_logit()
    d = ul.logit_data(sample, "y", ["x1", "x2"], "area", units)
    theta = np.array([-0.2, 1.0, 0.4, 0.9])
    q = ul.adapt(d, theta[:-1], theta[-1], 20)
    f, g, H = ul._negloglik(theta, d, q)  # theta is for the standardised x
    original = np.r_[d.original_beta(theta[:-1]), theta[-1]]
    assert -f == pytest.approx(quad_loglik(original, sample), rel=1e-9)
    eps = 1e-6
    num_g = [(ul._negloglik(theta + e, d, q)[0] - ul._negloglik(theta - e, d, q)[0]) / (2 * eps)
             for e in np.eye(4) * eps]  # fmt: skip
    num_H = [(ul._negloglik(theta + e, d, q)[1] - ul._negloglik(theta - e, d, q)[1]) / (2 * eps)
             for e in np.eye(4) * eps]  # fmt: skip
    np.testing.assert_allclose(g, num_g, atol=1e-6)
    np.testing.assert_allclose(H, np.array(num_H), atol=1e-5)


def test_logit_fit_is_the_maximum_likelihood():
    """The gradient of the independently integrated log-likelihood vanishes at the estimate."""
    units, sample = small_logit()
    out = ul.logistic_ebp(sample, "y", ["x1", "x2"], "area", units, n_mc=0)
    theta = np.r_[list(out.attrs["beta"].values()), np.sqrt(out.attrs["s2v"])]
    h = 1e-4
    grad = [(quad_loglik(theta + e, sample) - quad_loglik(theta - e, sample)) / (2 * h)
            for e in np.eye(4) * h]  # fmt: skip
    np.testing.assert_allclose(grad, 0.0, atol=1e-5)


def logit_world(seed, m=300, n_hi=14, B=0):
    rng = np.random.default_rng(seed)
    units, sample = population(rng, m, 0, n_hi, (-0.5, 1.5, 0.8), s2v=0.5, logistic=True)
    ebp = ul.logistic_ebp(sample, "y", ["x1", "x2"], "area", units.drop(columns="y"), n_mc=B,
                          seed=seed)  # fmt: skip
    return units, sample, ebp


def test_logit_recovers_truth_and_beats_direct():
    units, sample, out = logit_world(21, m=600)
    np.testing.assert_allclose(list(out.attrs["beta"].values()), [-0.5, 1.5, 0.8], atol=0.15)
    assert abs(out.attrs["s2v"] - 0.5) < 0.15
    assert out["estimate"].between(0, 1).all()
    truth = units.groupby("area")["y"].mean().to_numpy()
    direct = direct_means(sample, 600)
    ok = np.isfinite(direct)
    ratio = np.sqrt(
        np.mean((out["estimate"] - truth)[ok] ** 2) / np.mean((direct - truth)[ok] ** 2)
    )
    assert ratio < 0.5, ratio


def test_logit_unsampled_domain_is_marginal_population_average():
    units, _, out = logit_world(4, m=60, n_hi=6)
    beta = np.array(list(out.attrs["beta"].values()))
    sigma = np.sqrt(out.attrs["s2v"])
    none = out.loc[out["n"] == 0, "domain"].to_numpy()
    assert len(none) > 0
    for a in none[:3]:
        g = units[units.area == a]
        eta = beta[0] + g[["x1", "x2"]].to_numpy() @ beta[1:]
        marg = integrate.quad_vec(lambda u, e=eta: expit(e + sigma * u) * norm.pdf(u), -12, 12)[0]
        # equal up to the 20-node Gauss-Hermite error (about 1e-7 here)
        assert out.loc[out.domain == a, "estimate"].item() == pytest.approx(np.mean(marg), 1e-6)


def test_logit_census_domain_returns_its_share():
    """A domain whose every unit is sampled is its own census: the EBP is the observed share."""
    units, sample = small_logit()
    full = units[units.area == 0]
    sample = pd.concat([sample[sample.area != 0], full], ignore_index=True)
    out = ul.logistic_ebp(sample, "y", ["x1", "x2"], "area", units, n_mc=0)
    assert out.loc[out.domain == 0, "estimate"].item() == pytest.approx(full["y"].mean(), 1e-12)


def test_logit_bootstrap_intervals_cover():
    covered = []
    for rep in range(4):
        units, _, out = logit_world(100 + rep, m=150, n_hi=12, B=30)
        truth = units.groupby("area")["y"].mean().to_numpy()
        covered.append((out["ci_low"] <= truth) & (truth <= out["ci_high"]))
        assert out["ci_low"].between(0, 1).all() and out["ci_high"].between(0, 1).all()
    coverage = np.concatenate(covered).mean()
    assert 0.88 <= coverage <= 0.99, coverage


def test_logit_deterministic_given_seed():
    units, sample, out = logit_world(9, m=40, n_hi=8, B=10)
    again = logit_world(9, m=40, n_hi=8, B=10)[2]
    pd.testing.assert_frame_equal(again, out)
    assert again.attrs == out.attrs
    units = units.drop(columns="y")
    other = ul.logistic_ebp(sample, "y", ["x1", "x2"], "area", units, n_mc=10, seed=7)
    assert not np.allclose(other["mse"], out["mse"])
    np.testing.assert_allclose(other["estimate"], out["estimate"], rtol=1e-12)
    assert np.isfinite(out["mse"]).all() and (out["mse"] > 0).all()


def test_logit_penalised_keeps_s2v_positive():
    """With no domain effect ML puts s2v at (or near) 0; the likelihood times sigma does not."""
    rng = np.random.default_rng(12)
    units, sample = population(rng, 40, 1, 4, (-0.5, 1.5, 0.8), s2v=0.0, logistic=True)
    units = units.drop(columns="y")
    ml = ul.logistic_ebp(sample, "y", ["x1", "x2"], "area", units, n_mc=0)
    pen = ul.logistic_ebp(sample, "y", ["x1", "x2"], "area", units, n_mc=0, penalised=True)
    assert pen.attrs["converged"] and ml.attrs["converged"]
    assert pen.attrs["s2v"] > max(ml.attrs["s2v"], 0.01)
