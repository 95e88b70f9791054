"""Each implicate draws the prior terms' effects once, shared by the cells of a level: a cell's
draws keep their variance (the prior mean's posterior variance a_c), and cells that share
levels move together, so that a margin built from many cells carries the model's error."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from surveysynth.synthesis.api import fit_model
from surveysynth.synthesis.fit import term_column
from surveysynth.synthesis.planted import planted_survey
from surveysynth.synthesis.sample import prior_deviation

M = 2000


@pytest.fixture(scope="module")
def drawn():
    """A world whose first region has no respondents; the fit with M implicates, and every
    component's prior departures (implicates x cells x waves)."""
    n = np.full(4 * 3 * 3, 8)
    n[:9] = 0  # region 0: every sector and size empty
    w = planted_survey(n_regions=4, n_sectors=3, waves=2, n_per_cell=n, N_per_cell=60, seed=3)
    cfg = dataclasses.replace(w["config"], m=M)
    model = fit_model(w["responses"], w["frame"], w["support"], cfg)
    p = model.params.reset_index(drop=True)
    out = {}
    for comp in model.spec.components:
        a = p[comp.col("priorvar")].to_numpy(dtype=float)
        rows = [
            prior_deviation(model.spec, comp.name, p, np.full(len(p), i), a)
            for i in range(1, M + 1)
        ]
        if rows[0] is not None:
            out[comp.name] = (np.vstack(rows), a)
    return model, p, out


def test_a_cells_draws_keep_the_prior_variance(drawn):
    _, _, out = drawn
    assert out, "no component has prior draws"
    for name, (dev, a) in out.items():
        ok = a > 1e-6
        ratio = dev[:, ok].var(axis=0) / a[ok]
        # M = 2000 draws: a variance's sampling error is about 3% (the cells' errors are correlated)
        assert np.median(ratio) == pytest.approx(1.0, abs=0.12), name
        assert ratio.min() > 0.6 and ratio.max() < 1.5, (name, ratio.min(), ratio.max())


def test_cells_that_share_levels_move_together(drawn):
    """The empty region's cells share its effect: their departures correlate within an
    implicate (independent draws per cell would give 0), and a cell's two waves share all but
    the wave's levels."""
    _, p, out = drawn
    region = p["region"].to_numpy()
    empty = np.flatnonzero(region == region[0])
    corr_region, corr_waves = [], []
    for dev, a in out.values():
        d = dev[:, empty]
        if (a[empty] <= 1e-6).any():
            continue
        c = np.corrcoef(d.T)
        iu = np.triu_indices(len(empty), 1)
        corr_region.append(np.mean(c[iu]))
        same = p.iloc[empty].groupby("cell_id").indices.values()
        corr_waves += [c[i, j] for i, j in (tuple(v) for v in same if len(v) == 2)]
    assert len(corr_region) >= 3
    assert np.median(corr_region) > 0.25, corr_region
    assert np.median(corr_waves) > 0.6, np.median(corr_waves)


def test_the_cells_carry_their_level_codes(drawn):
    model, p, _ = drawn
    assert model.spec.n_terms >= 3
    for i in range(model.spec.n_terms):
        codes = p[term_column(i)]
        assert pd.api.types.is_integer_dtype(codes) and (codes >= 0).all()
    assert set(map(term_column, range(model.spec.n_terms))) <= set(model.spec.param_columns)
