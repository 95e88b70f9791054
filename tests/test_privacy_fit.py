"""The DP fit of numeric means (surveysynth.privacy.fit / means, docs/privacy.md) on a
demo-shaped world of about 6,000 responses: a cell dimension of few levels keeps its departures
in the prior, the within-cell variance is not the cells' spread, the pooling groups' answer
counts carry one noise draw instead of the clipped noise of every empty cell, and the
implicates' draws of a cell's mean spread wider as the noise grows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from small_survey import dp_world

from surveysynth.privacy import measure as M
from surveysynth.privacy.api import public_support
from surveysynth.privacy.fit import fit_dp
from surveysynth.privacy.means import group_count

VARS = {
    "ss_dp_bounds": {"turnover": [0, 1e10], "employees": [0, 1e6]},
    "ss_dp_pool_by": ["size_band"],
    "ss_dp_waves": [1, 2],
}
KEYS = ["region", "sector", "size_band", "wave"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cfg, r, _f, support = dp_world(tmp_path_factory.mktemp("dpfit") / "world", 7)
    return cfg, r, support


def _fit(world, eps):
    cfg, r, support = world
    st = M.DPSettings.from_vars({**VARS, "ss_dp_epsilon": eps}, cfg)
    stats = M.measure(r, public_support(r, support, cfg, st.waves), cfg, st)
    return stats, fit_dp(stats, cfg)


def _real_v(r, name):
    x = r[r[name] > 0].copy()
    x["v"] = np.log1p(x[name])
    return x


@pytest.mark.parametrize("name", ["turnover", "employees"])
def test_size_bands_keep_their_departures(world, name):
    """At a large epsilon the fitted cell means of v, averaged per size band (4 levels x 2
    waves: fewer margin levels than cells needed to estimate A), follow the respondents' means:
    before, a margin of fewer than 30 levels fell back to the overall value and the 250+ band's
    log turnover came out about 4 too low."""
    _cfg, r, _ = world
    stats, model = _fit(world, 50.0)
    cells = stats.cells[KEYS].assign(mu=model.mu_mean[name])
    x = _real_v(r, name).merge(cells, on=KEYS)
    gap = x.groupby("size_band").apply(lambda d: (d["mu"] - d["v"]).mean(), include_groups=False)
    spread = x.groupby("size_band")["v"].mean()
    assert spread.max() - spread.min() > 2.0  # the bands differ a lot
    assert gap.abs().max() < 0.3, gap


@pytest.mark.parametrize("name", ["turnover", "employees"])
def test_within_cell_sd_is_not_the_cells_spread(world, name):
    """At a large epsilon the fitted within-cell sd of v per size band is within 30% of the
    respondents' pooled within-cell sd (cells of 2+ answers): before, residuals about a size
    band's mean counted the cells' spread as within-cell (employees: 1.0-1.3 against 0.4).
    The fitted sd is averaged over three fits: the DP noise cannot be seeded (opendp's
    samplers), and one fit's ratio for the 250+ band ranged 0.73-0.91 over 15 fits (one fresh
    clone's run saw 0.62), so a single fit failed about one run in 15."""
    _cfg, r, _ = world
    fits = [_fit(world, 50.0) for _ in range(3)]
    x = _real_v(r, name)
    x = x[x.groupby(KEYS)["v"].transform("size") >= 2]
    dev = x["v"] - x.groupby(KEYS)["v"].transform("mean")
    n = x.groupby(KEYS)["v"].transform("size")
    real = (dev**2 * n / (n - 1)).groupby(x["size_band"]).mean() ** 0.5
    fitted = sum(
        st.cells.assign(s=mo.sigma[name]).groupby("size_band")["s"].mean() for st, mo in fits
    ) / len(fits)
    ratio = fitted[real.index] / real
    assert ratio.between(0.7, 1.3).all(), pd.DataFrame({"real": real, "fitted": fitted})


def test_group_counts_carry_one_noise_draw(world):
    """The answers per pooling group x wave come from the group's own noisy margin: within 4
    noise sds of the true count at epsilon 0.5, where summing the cells' noisy counts clipped at
    0 overstates them by thousands (the positive noise of every empty cell)."""
    cfg, r, _support = world
    stats, _ = _fit(world, 0.5)
    name = "turnover"
    got = group_count(stats, name, [2])
    k = M.row_index(r.reset_index(drop=True), stats.cells, cfg)
    code, _ = M.codes_of(
        r.reset_index(drop=True), next(o for o in cfg.outcomes if o.name == name), stats_bounds(cfg)
    )
    ok = (k >= 0) & (code == 2)
    true = np.bincount(stats.group[k[ok]], minlength=stats.n_groups)
    sd = np.sqrt(stats.noise_var[f"mcounts:{name}"])
    assert np.all(np.abs(got - true) < 4 * sd), (got, true, sd)
    clipped = np.bincount(stats.group, np.maximum(stats.counts[name][:, 2], 0), stats.n_groups)
    assert np.all(clipped - true > 10 * sd)


def stats_bounds(cfg):
    return M.DPSettings.from_vars(VARS, cfg).bounds


def test_implicate_spread_grows_with_the_noise(world):
    """Cells without a direct estimate: their means of v drawn over 200 implicates spread wider
    at epsilon 0.5 than at epsilon 8 (the median over those cells of each cell's spread), and
    the split of the residual variance between the cells' spread and the within-cell variance
    is drawn, not plugged in (its posterior is wide when few cells have a direct estimate).
    The median, not one cell: the DP noise cannot be seeded, and one cell's spread at 0.5 fell
    below its spread at 8 in one fit of 12 (0.62 against 0.74); the medians were 1.3-3.3
    against 0.67-0.94 over the same 12 fits."""
    sd = {}
    fits = {eps: _fit(world, eps)[1].mean_fit["turnover"] for eps in (0.5, 8.0)}
    # the same cells at both epsilons (the noise decides which cells have a direct estimate)
    cells = np.flatnonzero(~fits[0.5].has & ~fits[8.0].has)
    assert len(cells) > 100
    for eps, mf in fits.items():
        rng = np.random.default_rng(3)
        draws = np.array([mf.draw(rng)[0][cells] for _ in range(200)])
        spread = float(np.median(draws.std(axis=0)))
        sd[eps] = (spread, float(np.sqrt(mf.weights @ (mf.grid - mf.f_mean()) ** 2)))
    assert sd[0.5][0] > sd[8.0][0], sd
    assert sd[0.5][1] > 0.15, sd
