"""Small-area estimation on real populations: surveysynth against the standard estimators.

A real census table is the population, so every domain's true mean and share are known. Many
stratified samples (SRSWOR within each stratum, a fixed fraction, seeded) are drawn from it, and on
the SAME samples every estimator estimates every domain (empty ones included):

* direct: Hajek with the design weights N_h / n_h, the linearised (Taylor) SE of a stratified
  design and the normal interval (direct_estimates has the same point estimates; its intervals
  are on the estimate's scale: Wilson-t for shares, log-t for positive means); no estimate in an
  empty domain, no SE below 2 units;
* Fay-Herriot: area-level EBLUP (surveysynth.estimation.fay_herriot: REML, psi from its smoothed
  variance function) on the domain population means of the baselines' covariates; an empty
  domain gets the regression prediction with MSE sigma_v^2 + x'(X'V^-1X)^-1 x; a share's
  estimate is clipped to [0, 1];
* unit level: the Battese-Harter-Fuller EBLUP (means; unweighted, the classic nested-error
  model) and the logistic mixed-model EBP (shares) of surveysynth.estimation.unit_level, with the
  covariates of every population unit;
* surveysynth: the library's synthesizer run as the dbt model runs it (synthesize() with the
  SynthConfig the project builds from this survey's vars, support_table, augment mode, records
  for non-respondents, the disclosure-risk holdout left out of its input where the project's
  synthesis_responses does so), each sparse or empty domain completed from its respondents plus the synthetic records in
  every implicate and the implicates combined by Rubin's rule, as augmented_microdata and the
  estimate macro do (surveysynth.estimation.augmented); supported domains keep the direct
  estimate.

The covariates: the synthesizer gets the raw register columns (it chooses their scale: log of a
positive register); the baselines get them as a linear model would (log population and area,
shares and growth rates as they are). Intervals are nominal 95%; a share's interval is measured
within [0, 1] for every method (the EBP clips its own, the others are clipped for the measurement
only). Per domain-size class (sampled units in the domain: 0, 1-2, 3-5, 6+) and overall the
script prints RMSE against the truth, interval coverage and mean interval width, then the targets (PASS / MISS, every row printed): surveysynth RMSE <= BHF (means) and <= EBP
(shares) overall and in classes 0, 1-2, 3-5; surveysynth coverage in [0.93, 0.97]; surveysynth
mean width <= 1.3 x BHF's (EBP's).

The replicates go through the library path (a dbt build takes 15-60 s here, so 100 builds per
population are out of reach); ``--dbt K`` (default 2) also runs the first K samples through the
actual dbt pipeline by vars (responses and frame as Parquet, `dbt build --select
+domain_estimates` into a DuckDB file) and checks that the two paths agree: the cell rows of
domain_estimates against the library's, estimate and SE to 1e-6 of their spread, interval ends to
1e-3 of the half-width (the SQL t quantile is an approximation), the same synthetic-record counts.
(A dbt build imports the library's files as they are when it runs; if they changed since this
process started, in a working tree others edit, the comparison is reported as not made.)
The default survey settings of the project apply in both (sparse below 10 respondents or n_eff 5;
the disclosure-risk holdout share 0.5); calibration is to the strata only, which the design
weights already meet.

Populations (scripts/eval/real_data.py fetches them from the Debian archive):
  swiss    2,896 Swiss municipalities; domains canton x population band (93), strata the 7
           regions, 8% sampled; target building area per inhabitant (m2) and the share of
           municipalities older than the median (share aged 65+); registers population, area
  belgian  589 Belgian communes; domains district x population band (81), strata the 9
           provinces, 20% sampled; target average income per declaration and the share of
           communes whose median income is above the national median; registers population,
           share of women, population growth 2003-04
  eusilc   14,827 persons of the synthetic Austrian EU-SILC (a pseudo-population; households
           ignored); domains state x age band x sex (108), strata the 9 states, 1.5% sampled;
           target equivalised income and the at-risk-of-poverty share (below 60% of the
           median); registers age, household size
  belgian_income  the Belgian communes with the commune's total taxable income as the mean's
           target (skewed: Antwerp's is 5.4e9 EUR, the median commune's 1.3e8), and its population
           Tot04 as the auxiliary of a ratio estimator (ss_ratio_estimators), as a business
           survey's turnover with the register's: the published direct mean is then the ratio
           estimator's (the library path's direct stays Hajek)
  swiss_area  the Swiss municipalities with the building area (ha) as the mean's target and the
           population POPTOT as the ratio auxiliary

    .venv/bin/python scripts/eval/eval_real_sae.py                  # swiss and belgian, 100 reps
    .venv/bin/python scripts/eval/eval_real_sae.py --quick          # 10 reps
    .venv/bin/python scripts/eval/eval_real_sae.py --population eusilc --reps 50 --m 10
    .venv/bin/python scripts/eval/eval_real_sae.py --quick --dbt 0  # no dbt builds

Same arguments, same output (every random draw is seeded from --seed and the replicate). Exits 1
when a target row is MISS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
#: the demo configuration every build here starts from (the package defaults describe no survey)
DEMO_VARS = yaml.safe_load((ROOT / "demo" / "demo_vars.yml").read_text())
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_data import load

from surveysynth.contract.inputs import make_cell_id, support_table
from surveysynth.dbt_glue import synth_config
from surveysynth.estimation import fay_herriot as fh
from surveysynth.estimation.augmented import augmented_cell_estimates
from surveysynth.synthesis.api import synthesize

Z975 = 1.959963984540054
CLASSES = ["0", "1-2", "3-5", "6+"]
TARGET_CLASSES = ["all", "0", "1-2", "3-5"]
HOLDOUT_SHARE = 0.5  # ss_risk_holdout_share, the project default; passed to dbt explicitly
SPARSE_BELOW_N, SPARSE_BELOW_NEFF = 10, 5.0  # ss_sparse_below_n / _neff, the project defaults
METHODS = ["direct", "fay_herriot", "unit_level", "surveysynth"]


# ----------------------------------------------------------------------------- populations
@dataclass
class Population:
    """A census table as a population: unit_id, cell dims (the domains), the strata column (one
    of the dims), the continuous target ``y``, the 0/1 target ``flag``, the register columns
    (raw, for the synthesizer and the frame) and the baselines' covariates ``model_x``."""

    name: str
    units: pd.DataFrame
    dims: list[str]
    stratum: str
    y: str
    flag: str
    register: list[str]
    model_x: list[str]
    fraction: float
    about: str
    #: the register auxiliary of a ratio estimator of y (ss_ratio_estimators), or None
    ratio: str | None = None


def _finish(units: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    for d in dims:
        units[d] = units[d].astype(str)
    units["cell_id"] = make_cell_id(units, dims)
    return units.reset_index(drop=True)


def swiss() -> Population:
    s = load("swissmunicipalities")
    band = pd.cut(
        s.POPTOT, [0, 500, 2000, 10000, np.inf], labels=["lt500", "lt2k", "lt10k", "10k+"]
    )
    pct65 = s.Pop65P / s.POPTOT
    u = pd.DataFrame(
        {
            "unit_id": "CH" + s.COM.astype(str),
            "REG": s.REG,
            "CT": s.CT,
            "size": band.astype(str),
            "airbat_pc": 1e4 * s.Airbat / s.POPTOT,
            "older": (pct65 > pct65.median()).astype("int64"),
            "POPTOT": s.POPTOT.astype(float),
            "HApoly": s.HApoly.astype(float),
            "log_pop": np.log(s.POPTOT),
            "log_area": np.log(s.HApoly),
        }
    )
    dims = ["REG", "CT", "size"]
    return Population(
        "swiss",
        _finish(u, dims),
        dims,
        "REG",
        "airbat_pc",
        "older",
        ["POPTOT", "HApoly"],
        ["log_pop", "log_area"],
        0.08,
        "building area per inhabitant (m2) / share aged 65+ above the median",
    )


def belgian() -> Population:
    b = load("belgianmunicipalities")
    u = pd.DataFrame(
        {
            "unit_id": "BE" + b.INS.astype(str),
            "Province": b.Province,
            "Arrondiss": b.Arrondiss,
            "size": np.where(b.Tot04 < 12000, "lt12k", "12k+"),
            "avg_income": b.averageincome.astype(float),
            "rich": (b.medianincome > b.medianincome.median()).astype("int64"),
            "Tot04": b.Tot04.astype(float),
            "women_pct": 100 * b.Women04 / b.Tot04,
            "growth_pct": 100 * b.DiffTOT / b.Tot03,
            "log_pop": np.log(b.Tot04),
        }
    )
    dims = ["Province", "Arrondiss", "size"]
    return Population(
        "belgian",
        _finish(u, dims),
        dims,
        "Province",
        "avg_income",
        "rich",
        ["Tot04", "women_pct", "growth_pct"],
        ["log_pop", "women_pct", "growth_pct"],
        0.20,
        "average income per declaration (EUR) / median income above the national median",
    )


def eusilc() -> Population:
    e = load("eusilc")
    band = pd.cut(
        e.age,
        [-2, 15, 24, 34, 49, 64, 200],
        labels=["0-15", "16-24", "25-34", "35-49", "50-64", "65+"],
    )
    u = pd.DataFrame(
        {
            "unit_id": "AT" + e.rb030.astype(str),
            "state": e.db040,
            "age_band": band.astype(str),
            "sex": e.rb090,
            "eq_income": e.eqIncome.astype(float),
            "poor": (e.eqIncome < 0.6 * e.eqIncome.median()).astype("int64"),
            "age": e.age.astype(float),
            "hsize": e.hsize.astype(float),
        }
    )
    dims = ["state", "age_band", "sex"]
    return Population(
        "eusilc",
        _finish(u, dims),
        dims,
        "state",
        "eq_income",
        "poor",
        ["age", "hsize"],
        ["age", "hsize"],
        0.015,
        "equivalised income (EUR) / at-risk-of-poverty share (below 60% of the median)",
    )


def _with_total(pop: Population, name: str, dataset: str, column: str, ratio: str, about: str):
    """``pop`` with the census table's skewed total ``column`` as the mean's target and the
    register column ``ratio`` as the auxiliary of a ratio estimator of it."""
    units = pop.units.assign(total=load(dataset)[column].astype(float).to_numpy())
    return replace(pop, name=name, units=units, y="total", ratio=ratio, about=about)


def belgian_income() -> Population:
    """The Belgian communes with a skewed total as the target, as a business survey's turnover:
    the commune's total taxable income, with its population (Tot04, on the register) as the
    auxiliary of a ratio estimator. A domain's mean is dominated by its few large communes."""
    about = "total taxable income (EUR; ratio estimator on Tot04) / median income above median"
    return _with_total(
        belgian(), "belgian_income", "belgianmunicipalities", "TaxableIncome", "Tot04", about
    )


def swiss_area() -> Population:
    """The Swiss municipalities with the building area (ha, a skewed total) as the target and the
    population (POPTOT, on the register) as the auxiliary of a ratio estimator."""
    about = "building area (ha; ratio estimator on POPTOT) / share aged 65+ above the median"
    return _with_total(swiss(), "swiss_area", "swissmunicipalities", "Airbat", "POPTOT", about)


POPULATIONS: dict[str, Callable[[], Population]] = {
    "swiss": swiss,
    "belgian": belgian,
    "eusilc": eusilc,
    "belgian_income": belgian_income,
    "swiss_area": swiss_area,
}


def domains(pop: Population) -> pd.DataFrame:
    """One row per domain: N, the true mean and share, the population means of model_x."""
    g = pop.units.groupby("cell_id", sort=True)
    out = g[[pop.y, pop.flag, *pop.model_x]].mean()
    out = out.rename(columns={pop.y: "true_mean", pop.flag: "true_share"})
    out.insert(0, "N", g.size())
    return out.reset_index()


# ----------------------------------------------------------------------------- sampling
def rep_seed(seed: int, rep: int) -> int:
    """The replicate's seed (31 bits), the same for every estimator and both paths."""
    return int(np.random.SeedSequence([seed, rep]).generate_state(1)[0] & 0x7FFFFFFF)


def draw(pop: Population, seed: int) -> pd.DataFrame:
    """Stratified SRSWOR: n_h = max(2, round(fraction N_h)) in every stratum; w = N_h / n_h and
    fpc = 1 - n_h / N_h."""
    u = pop.units
    rng = np.random.default_rng(seed)
    key = rng.random(len(u))
    N_h = u.groupby(pop.stratum)[pop.stratum].transform("size").to_numpy()
    n_h = np.maximum(2, np.round(pop.fraction * N_h)).astype(int)
    rank = pd.Series(key).groupby(u[pop.stratum].to_numpy()).rank(method="first").to_numpy()
    s = u[rank <= n_h].copy()
    sel = rank <= n_h
    s["analysis_weight"] = N_h[sel] / n_h[sel]
    s["fpc"] = 1.0 - n_h[sel] / N_h[sel]
    s["wave"] = 1
    return s.reset_index(drop=True)


# ----------------------------------------------------------------------------- vars
def contract_vars(pop: Population, m: int, seed: int, data: Path | None = None) -> dict:
    """The input-contract vars of this survey, as `dbt build --vars` takes them."""
    v = {
        "ss_unit_id": "unit_id",
        "ss_frame_unit_id": "unit_id",
        "ss_wave": "wave",
        "ss_cell_dims": pop.dims,
        "ss_design_weight": None,
        "ss_design_strata": [pop.stratum],
        "ss_variance_collapse": None,
        "ss_calibration_margins": [[pop.stratum]],
        "ss_outcomes": {pop.y: {"type": "continuous", "min": 0}, pop.flag: {"type": "binary"}},
        "ss_frame_auxiliaries": pop.register,
        "ss_quasi_identifiers": pop.dims,
        "ss_sensitive": [pop.y],
        "ss_ratio_estimators": {pop.y: pop.ratio} if pop.ratio else {},
        "ss_sdc_tables": [],
        "ss_synth_rules": [],
        "ss_fidelity_regression": None,
        "ss_backtest_enabled": False,
        "ss_risk_holdout_share": HOLDOUT_SHARE,
        "ss_sparse_below_n": SPARSE_BELOW_N,
        "ss_sparse_below_neff": SPARSE_BELOW_NEFF,
        "ss_synth_m": m,
        "ss_seed": seed,
    }
    if data is not None:
        v["ss_responses"] = f"file:{data / 'responses.parquet'}"
        v["ss_frame"] = f"file:{data / 'frame.parquet'}"
        v["ss_synth_run_dir"] = str(data / "runs")
    return v


# ----------------------------------------------------------------------------- estimators
def _rows(cell_id, estimate, lo, hi, method: str, target: str) -> pd.DataFrame:
    """Long rows of one method x target (positional: indexes of the inputs are ignored)."""
    cols = {"cell_id": cell_id, "estimate": estimate, "ci_low": lo, "ci_high": hi}
    out = pd.DataFrame({k: np.asarray(v) for k, v in cols.items()})
    out.insert(1, "target", target)
    out.insert(2, "method", method)
    out["estimate"] = out["estimate"].astype(float)
    return out


def _support(pop: Population, sample: pd.DataFrame, cfg) -> pd.DataFrame:
    frame = pop.units[["unit_id", *pop.dims, *pop.register]]
    return support_table(
        sample, cfg, frame=frame, sparse_below_n=SPARSE_BELOW_N, sparse_below_neff=SPARSE_BELOW_NEFF
    )


def direct(pop: Population, sample: pd.DataFrame, cfg, support: pd.DataFrame) -> pd.DataFrame:
    """Hajek + stratified Taylor SE for every domain (the observed-cell branch of the augmented
    estimator with no cell completed), normal interval; no SE below 2 units."""
    sup = support.assign(support_class="supported")
    est = augmented_cell_estimates(
        sample, sample.iloc[:0], sup, cfg, stratum=pop.stratum, fpc="fpc"
    )
    parts = []
    for target, ind in (("mean", pop.y), ("share", f"{pop.flag}=1")):
        e = est[est.indicator == ind]
        ok = e["n_real"].to_numpy() >= 2
        lo = np.where(ok, e["estimate"] - Z975 * e["se"], np.nan)
        hi = np.where(ok, e["estimate"] + Z975 * e["se"], np.nan)
        parts.append(
            _rows(e["cell_id"].to_numpy(), e["estimate"].to_numpy(), lo, hi, "direct", target)
        )
    return pd.concat(parts, ignore_index=True)


def fay_herriot(pop: Population, sample: pd.DataFrame, dom: pd.DataFrame) -> pd.DataFrame:
    """Area-level EBLUP per target; X = intercept + domain population means of model_x."""
    parts = []
    for target, col in (("mean", pop.y), ("share", pop.flag)):
        g = sample.groupby("cell_id")[col]
        d = dom[["cell_id", "N", *pop.model_x]].merge(
            g.agg(n="size", s2="var").join(_hajek(sample, col)).reset_index(),
            on="cell_id",
            how="left",
        )
        d["n"] = d["n"].fillna(0)
        est, mse = _fh_domains(d, pop.model_x)
        if target == "share":
            est = np.clip(est, 0.0, 1.0)
        half = Z975 * np.sqrt(mse)
        parts.append(_rows(d["cell_id"], est, est - half, est + half, "fay_herriot", target))
    return pd.concat(parts, ignore_index=True)


def _hajek(sample: pd.DataFrame, col: str) -> pd.Series:
    w = sample["analysis_weight"]
    num = (w * sample[col]).groupby(sample["cell_id"]).sum()
    return (num / w.groupby(sample["cell_id"]).sum()).rename("theta")


def _fh_domains(d: pd.DataFrame, xs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    X = np.column_stack([np.ones(len(d)), d[xs].to_numpy(dtype=float)])
    n, N = d["n"].to_numpy(dtype=float), d["N"].to_numpy(dtype=float)
    theta = d["theta"].to_numpy(dtype=float)
    psi = fh.smoothed_psi(n, N, d["s2"].to_numpy(dtype=float), X)
    keep = (n >= 1) & np.isfinite(psi) & (psi > 0)
    census = (n >= 1) & (psi <= 0)  # every unit of the domain sampled: the direct value is exact
    fit = fh.fit(theta[keep], psi[keep], X[keep])
    est, mse = np.full(len(d), np.nan), np.full(len(d), np.nan)
    est[keep], mse[keep] = fh.eblup(theta[keep], psi[keep], X[keep], fit)
    est[census], mse[census] = theta[census], 0.0
    out = ~(keep | census)
    A = np.linalg.pinv(X[keep].T @ (X[keep] / (fit.sigma_v2 + psi[keep])[:, None]))
    est[out] = X[out] @ fit.beta
    mse[out] = fit.sigma_v2 + np.einsum("ij,jk,ik->i", X[out], A, X[out])
    return est, mse


def _unit_level(name: str):
    """surveysynth.estimation.unit_level.<name>, or None while it is not there."""
    try:
        from surveysynth.estimation import unit_level as ul
    except ImportError:
        return None
    return getattr(ul, name, None)


def unit_level(pop: Population, sample: pd.DataFrame, dom: pd.DataFrame, seed: int, n_mc: int):
    """BHF EBLUP (means; unweighted, the classic nested-error model) and logistic EBP (shares),
    each left out while the library does not have it."""
    parts = []
    bhf, ebp = _unit_level("bhf_eblup"), _unit_level("logistic_ebp")
    if bhf is not None:
        popx = dom[["cell_id", "N", *pop.model_x]]
        b = bhf(sample, pop.y, pop.model_x, "cell_id", popx)
        parts.append(
            _rows(b["cell_id"], b["estimate"], b["ci_low"], b["ci_high"], "unit_level", "mean")
        )
    if ebp is not None:
        units = pop.units[["cell_id", *pop.model_x]]
        e = ebp(sample, pop.flag, pop.model_x, "cell_id", units, n_mc=n_mc, seed=seed)
        parts.append(
            _rows(e["cell_id"], e["estimate"], e["ci_low"], e["ci_high"], "unit_level", "share")
        )
    return pd.concat(parts, ignore_index=True) if parts else None


def holdout_in_synthesis() -> bool:
    """Whether this project's synthesis_responses leaves the disclosure-risk holdout out of the
    synthesizer's input (read from the model's SQL, so the library path follows the pipeline it
    ships with: earlier versions withheld it, a cross-fitted risk gate gives the synthesizer
    every respondent)."""
    sql = (ROOT / "models" / "disclosure" / "synthesis_responses.sql").read_text()
    return "ref('risk_holdout')" in sql


def synth_inputs(pop: Population, sample: pd.DataFrame, seed: int) -> pd.DataFrame:
    """synthesis_responses: the responses without the disclosure-risk holdout (a unit outside the
    synthesized cells whose md5(seed|unit_id) falls below the share; risk_holdout.sql), when the
    project withholds it; every response otherwise."""
    out = sample.drop(columns="_synthesized")
    if not holdout_in_synthesis():
        return out
    cut = f"{int(HOLDOUT_SHARE * 4294967296):08x}"
    draw_ = sample["unit_id"].map(lambda u: hashlib.md5(f"{seed}|{u}".encode()).hexdigest()[:8])
    return out[~((draw_ < cut) & ~sample["_synthesized"]).to_numpy()]


def staged(pop: Population, sample: pd.DataFrame) -> pd.DataFrame:
    """The responses as synthetic_microdata receives them: stg_responses' columns and types, its
    row numbering (by unit, wave, outcomes), the calibrated weight as analysis_weight (here the
    design weight: the strata are the only margin, which N_h / n_h meets). The synthesizer orders
    rows by a hash of their whole content, so only the same columns give the same draws."""
    s = sample.sort_values(["unit_id", "wave", pop.y, pop.flag], kind="mergesort")
    cols = {"_row_id": np.arange(1, len(s) + 1), "unit_id": s["unit_id"], "wave": s["wave"]}
    cols.update({d: s[d] for d in pop.dims})
    cols.update({"cell_id": s["cell_id"], "design_weight": np.full(len(s), np.nan)})
    cols.update({pop.y: s[pop.y].astype(float), pop.flag: s[pop.flag].astype("int32")})
    cols.update({a: s[a].astype(float) for a in pop.register})
    cols["analysis_weight"] = s["analysis_weight"]
    out = pd.DataFrame({k: np.asarray(v) for k, v in cols.items()})
    return out.astype({"_row_id": "int64", "wave": "int64", "unit_id": object})


def observed_weight(pop: Population, sample: pd.DataFrame, sup: pd.DataFrame, cfg) -> np.ndarray:
    """augmented_microdata's weight of a respondent in an observed cell: its design weight raked
    to what the completed cells leave of its stratum's count (the only margin here; the factor
    is constant within a cell, so it moves only a cell's sum of weights, read by a share's
    interval)."""
    done = sup["support_class"].isin(cfg.augment_classes)
    stratum_of = pop.units.drop_duplicates("cell_id").set_index("cell_id")[pop.stratum]
    N_h = pop.units.groupby(pop.stratum).size()
    left = N_h - sup[done].groupby(sup.loc[done, "cell_id"].map(stratum_of))["n_population"].sum()
    left = left.reindex(N_h.index).fillna(N_h)
    in_done = (
        sample["cell_id"].map(sup.set_index("cell_id")["support_class"]).isin(cfg.augment_classes)
    )
    w = sample["analysis_weight"].where(~in_done, 0.0)
    g = left / w.groupby(sample[pop.stratum]).sum()
    return (sample["analysis_weight"] * sample[pop.stratum].map(g)).to_numpy()


def synth_arguments(pop: Population, sample: pd.DataFrame, m: int, seed: int):
    """What synthetic_microdata hands the synthesizer for this sample: (responses, frame,
    support, config)."""
    cfg = synth_config(contract_vars(pop, m, seed))
    frame = pop.units[["unit_id", *pop.dims, "cell_id", *pop.register]]
    sup = _support(pop, sample, cfg)
    cls = sup.set_index("cell_id")["support_class"]
    r = staged(pop, sample)
    r["_synthesized"] = r["cell_id"].map(cls).isin(cfg.augment_classes).to_numpy()
    return synth_inputs(pop, r, seed), frame, sup, cfg


def surveysynth(pop: Population, sample: pd.DataFrame, m: int, seed: int):
    """The library path: synthesize as the dbt model does, complete, combine (Rubin)."""
    responses, frame, sup, cfg = synth_arguments(pop, sample, m, seed)
    syn = synthesize(responses, frame, sup, cfg)
    syn.attrs = {}
    s = sample.assign(raked_weight=observed_weight(pop, sample, sup, cfg))
    est = augmented_cell_estimates(
        s, syn, sup, cfg, stratum=pop.stratum, fpc="fpc", weight="raked_weight"
    )
    rows = [
        _rows(e["cell_id"], e["estimate"], e["ci_low"], e["ci_high"], "surveysynth", t)
        for t, e in (
            ("mean", est[est.indicator == pop.y]),
            ("share", est[est.indicator == f"{pop.flag}=1"]),
        )
    ]
    return pd.concat(rows, ignore_index=True), est, sup


# ----------------------------------------------------------------------------- one replicate
def replicate(pop: Population, dom: pd.DataFrame, rep: int, a: argparse.Namespace):
    """Every estimator on one sample: long rows (cell_id, target, method, estimate, interval)
    with the domain's sample size; and the surveysynth cell table (for the dbt comparison)."""
    seed = rep_seed(a.seed, rep)
    sample = draw(pop, seed)
    cfg = synth_config(contract_vars(pop, a.m, seed))
    ours, est, _ = surveysynth(pop, sample, a.m, seed)
    parts = [direct(pop, sample, cfg, _support(pop, sample, cfg)), fay_herriot(pop, sample, dom)]
    ul = unit_level(pop, sample, dom, seed, a.n_mc)
    if ul is not None:
        parts.append(ul)
    parts.append(ours)
    return with_sample_size(pd.concat(parts, ignore_index=True), sample, rep), est


def with_sample_size(rows: pd.DataFrame, sample: pd.DataFrame, rep: int) -> pd.DataFrame:
    """Rows with the domain's sampled units (n) and the replicate."""
    n = sample.groupby("cell_id").size()
    rows["n"] = rows["cell_id"].map(n).fillna(0).astype(int).to_numpy()
    rows["rep"] = rep
    return rows


def with_truth(rows: pd.DataFrame, dom: pd.DataFrame) -> pd.DataFrame:
    """Rows with the domain's true mean or share, by target."""
    truth = dom.set_index("cell_id")
    rows["truth"] = np.where(
        rows["target"] == "mean",
        rows["cell_id"].map(truth["true_mean"]),
        rows["cell_id"].map(truth["true_share"]),
    )
    return rows


def run(pop: Population, a: argparse.Namespace) -> tuple[pd.DataFrame, dict[int, pd.DataFrame]]:
    dom = domains(pop)
    t0 = time.monotonic()
    out, kept = [], {}
    step = max(1, a.reps // 10)
    for rep in range(a.reps):
        rows, est = replicate(pop, dom, rep, a)
        out.append(rows)
        if rep < a.dbt:
            kept[rep] = est
        if (rep + 1) % step == 0 or rep + 1 == a.reps:
            print(
                f"  [{pop.name}] replicate {rep + 1}/{a.reps}, {time.monotonic() - t0:.0f}s",
                flush=True,
            )
    return with_truth(pd.concat(out, ignore_index=True), dom), kept


# ----------------------------------------------------------------------------- scoring
def size_class(n: pd.Series) -> pd.Series:
    return pd.cut(n, [-1, 0, 2, 5, np.inf], labels=CLASSES).astype(str)


def score(rows: pd.DataFrame) -> pd.DataFrame:
    """RMSE, coverage and mean width per target x class (and 'all') x method; rows = domain x
    replicate pairs with an estimate (with an interval, for coverage and width)."""
    r = rows.assign(cls=size_class(rows["n"]))
    r = pd.concat([r, r.assign(cls="all")], ignore_index=True)
    r = r[r["estimate"].notna()]
    r["err2"] = (r["estimate"] - r["truth"]) ** 2
    share = r["target"] == "share"  # intervals of a share measured within [0, 1], every method
    r.loc[share, "ci_low"] = r.loc[share, "ci_low"].clip(lower=0.0)
    r.loc[share, "ci_high"] = r.loc[share, "ci_high"].clip(upper=1.0)
    has = r["ci_low"].notna() & r["ci_high"].notna()
    r["covered"] = np.where(has, (r["ci_low"] <= r["truth"]) & (r["truth"] <= r["ci_high"]), np.nan)
    r["width"] = np.where(has, r["ci_high"] - r["ci_low"], np.nan)
    g = r.groupby(["target", "cls", "method"])
    out = g.agg(
        rows=("err2", "size"),
        mse=("err2", "mean"),
        coverage=("covered", "mean"),
        width=("width", "mean"),
    )
    out["rmse"] = np.sqrt(out.pop("mse"))
    return out.reset_index()


def _fmt(x: float, digits: int) -> str:
    if not np.isfinite(x):
        return "inf" if x == np.inf else "-"
    return f"{x:.{digits}f}" if abs(x) < 1e6 else f"{x:.3g}"


def print_table(pop: Population, sc: pd.DataFrame, rows: pd.DataFrame) -> None:
    for target in ("mean", "share"):
        label = "BHF EBLUP" if target == "mean" else "logistic EBP"
        print(
            f"\n{pop.name}: domain {target}s ({pop.y if target == 'mean' else pop.flag}); "
            f"unit_level = {label}"
        )
        d = 1 if target == "mean" else 3
        head = f"{'class':>5} {'domains':>8} | " + " | ".join(f"{m:^26}" for m in METHODS)
        print(head)
        print(
            f"{'':>5} {'x reps':>8} | "
            + " | ".join(f"{'RMSE':>8} {'cover':>6} {'width':>10}" for _ in METHODS)
        )
        for cls in ["all", *CLASSES]:
            part = sc[(sc.target == target) & (sc.cls == cls)].set_index("method")
            base = rows[(rows.target == target) & (rows.method == "surveysynth")]
            n_rows = len(base) if cls == "all" else int((size_class(base["n"]) == cls).sum())
            cells = []
            for m in METHODS:
                if m not in part.index:
                    cells.append(f"{'n/a':>8} {'':>6} {'':>10}")
                    continue
                p = part.loc[m]
                cells.append(
                    f"{_fmt(p.rmse, d + 1):>8} {_fmt(p.coverage, 3):>6} {_fmt(p.width, d + 1):>10}"
                )
            print(f"{cls:>5} {n_rows:>8} | " + " | ".join(cells))
        print(
            "  (direct: no estimate in an empty domain, no interval below 2 units; RMSE over the "
            "domains x reps each method estimates, coverage and width over those with an interval"
            + ("; share intervals measured within [0, 1])" if target == "share" else ")")
        )


def targets(pop: Population, sc: pd.DataFrame) -> list[tuple[str, bool | None]]:
    """(description, passed) per target row; passed is None when the baseline is missing."""
    out: list[tuple[str, bool | None]] = []
    for target in ("mean", "share"):
        base = "BHF" if target == "mean" else "EBP"
        for cls in TARGET_CLASSES:
            p = sc[(sc.target == target) & (sc.cls == cls)].set_index("method")
            if "surveysynth" not in p.index:
                continue
            ss = p.loc["surveysynth"]
            ul = p.loc["unit_level"] if "unit_level" in p.index else None
            where = f"{pop.name} {target}s, class {cls}:"
            cover = f"{where} coverage surveysynth {ss.coverage:.3f} in [0.93, 0.97]"
            if ul is None:
                out.append((f"{where} RMSE surveysynth {ss.rmse:.4g} <= {base} (missing)", None))
                out.append((cover, bool(0.93 <= ss.coverage <= 0.97)))
                out.append((f"{where} width surveysynth {ss.width:.4g} <= 1.3 x {base}", None))
                continue
            rmse = f"{where} RMSE surveysynth {ss.rmse:.4g} <= {base} {ul.rmse:.4g}"
            width = f"{where} width surveysynth {ss.width:.4g} <= 1.3 x {base} {ul.width:.4g}"
            out.append((f"{rmse} (ratio {ss.rmse / ul.rmse:.3g})", bool(ss.rmse <= ul.rmse)))
            out.append((cover, bool(0.93 <= ss.coverage <= 0.97)))
            ok = bool(ss.width <= 1.3 * ul.width)
            out.append((f"{width} (ratio {ss.width / ul.width:.3g})", ok))
    return out


# ----------------------------------------------------------------------------- dbt path
def library_source() -> str:
    """Hash of surveysynth's Python source: a dbt build imports the files as they are when it
    runs, this process as they were when it started."""
    h = hashlib.sha256()
    for f in sorted((ROOT / "surveysynth").rglob("*.py")):
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


LIBRARY_SOURCE = library_source()


class DbtFailed(RuntimeError):
    """The dbt build of a replicate built nothing; the message holds dbt's output."""


def dbt_build(
    pop: Population, sample: pd.DataFrame, m: int, seed: int, work: Path, extra: dict | None = None
) -> Path:
    """`dbt build` of domain_estimates and its parents on this sample, by vars (``extra`` on top of
    ``DBT_EXTRA``); the DuckDB file."""
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    sample[["unit_id", "wave", *pop.dims, pop.y, pop.flag]].to_parquet(data / "responses.parquet")
    pop.units[["unit_id", *pop.dims, *pop.register]].to_parquet(data / "frame.parquet")
    db = work / "warehouse.duckdb"
    cmd = [
        str(Path(sys.executable).with_name("dbt")),
        "build",
        "--project-dir",
        str(ROOT),
        "--profiles-dir",
        str(ROOT),
        "--target",
        "duckdb",
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        "--select",
        "+domain_estimates",
        "--indirect-selection",
        "cautious",
        "--vars",
        json.dumps(
            {**DEMO_VARS, **contract_vars(pop, m, seed, data), **DBT_EXTRA, **(extra or {})}
        ),
    ]
    env = {
        **os.environ,
        "SURVEYSYNTH_DUCKDB_PATH": str(db),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stdout[-3000:] + proc.stderr[-2000:]
        if not db.exists():
            raise DbtFailed(f"dbt build failed ({pop.name}):\n{tail}")
        print(
            f"  note: dbt build exited {proc.returncode} (a test failed?); reading what it built:\n"
            + "\n".join(x for x in tail.splitlines() if "FAIL" in x or "ERROR" in x)[-1500:]
        )
    return db


#: vars of the dbt builds beyond the survey's contract: the back-test on, as a user's build has it
#: by default, so the published estimate's method rule has its measured bias allowance; and no row
#: held back for quality, so the benchmark scores the rule's choice and interval in every domain
#: (by default a share whose SE is over 0.10 is suppressed, as most are here)
DBT_EXTRA = {
    "ss_backtest_enabled": True,
    "ss_grade_share_se_caution": 1.0,
    "ss_grade_cv_caution": 1e9,
    "ss_grade_min_n": 2,
}


def dbt_cells(pop: Population, a: argparse.Namespace, rep: int) -> pd.DataFrame:
    """The cell rows of domain_estimates from a dbt build of replicate rep: the augmented columns
    (as estimate, se, ci_low, ci_high, for the comparison with the library) and the published
    and direct ones (pub_*, direct_*)."""
    seed = rep_seed(a.seed, rep)
    with tempfile.TemporaryDirectory(prefix="sae_dbt_") as tmp:
        extra = {"ss_backtest_sizes": a.backtest_sizes} if a.backtest_sizes else None
        db = dbt_build(pop, draw(pop, seed), a.m, seed, Path(tmp), extra)
        with duckdb.connect(str(db), read_only=True) as con:
            return con.sql(
                "select cell_id, indicator, augmented_estimate as estimate, augmented_se as se,"
                " augmented_ci_low as ci_low, augmented_ci_high as ci_high, n_synthetic,"
                " estimate as pub_estimate, ci_low as pub_ci_low, ci_high as pub_ci_high,"
                " method as pub_method, direct_estimate, direct_ci_low, direct_ci_high "
                "from domain_estimates where domain_level = 'cell'"
            ).df()


PUBLISHED_METHODS = ["direct", "augmented", "published"]


def published_rows(pop: Population, dom: pd.DataFrame, de: pd.DataFrame, rep: int, seed: int):
    """Long rows (as ``run`` makes them) of the direct, augmented and published estimates of one
    dbt build, with the domain's sample size and the truth."""
    parts = []
    for target, ind in (("mean", pop.y), ("share", f"{pop.flag}=1")):
        d = de[de["indicator"] == ind]
        for method, pre in (("direct", "direct_"), ("augmented", ""), ("published", "pub_")):
            est = d[f"{pre}estimate"]
            parts.append(
                _rows(d["cell_id"], est, d[f"{pre}ci_low"], d[f"{pre}ci_high"], method, target)
            )
    rows = with_sample_size(pd.concat(parts, ignore_index=True), draw(pop, seed), rep)
    return with_truth(rows, dom)


def published_targets(pop: Population, rows: pd.DataFrame) -> list[tuple[str, bool | None]]:
    """Print the published estimate against direct and augmented on the dbt samples; targets per
    class: published RMSE <= direct's and <= augmented's, each on the domain x sample pairs both
    estimate (direct has none in an empty domain), and published coverage in [0.93, 0.97]."""
    sc = score(rows)
    reps = rows["rep"].nunique()
    out: list[tuple[str, bool | None]] = []
    for target in ("mean", "share"):
        print(f"\n{pop.name}: published domain {target}s on the {reps} dbt samples")
        print(f"{'class':>5} | " + " | ".join(f"{m:^26}" for m in PUBLISHED_METHODS))
        for cls in ["all", *CLASSES]:
            part = sc[(sc.target == target) & (sc.cls == cls)].set_index("method")
            cells = [
                (f"{_fmt(part.at[m, 'rmse'], 4):>8} {_fmt(part.at[m, 'coverage'], 3):>6} "
                 f"{_fmt(part.at[m, 'width'], 4):>10}") if m in part.index else f"{'n/a':>26}"
                for m in PUBLISHED_METHODS
            ]  # fmt: skip
            print(f"{cls:>5} | " + " | ".join(cells))
            if "published" in part.index:
                out += _published_checks(pop, rows, target, cls, part.loc["published"])
    _empty_by_population(pop, rows)
    return out


def _empty_by_population(pop: Population, rows: pd.DataFrame) -> None:
    """Report only: the published intervals of empty domains by the domain's population N. A
    share of N <= 3 units takes at most 4 values, and a 95% interval of its predictive
    distribution is most often the whole [0, 1]: such domains cover (nearly) always."""
    N = domains(pop).set_index("cell_id")["N"]
    r = rows[(rows["method"] == "published") & (rows["n"] == 0)].copy()
    r["N"] = r["cell_id"].map(N)
    r["covered"] = (r["ci_low"] <= r["truth"] + 1e-12) & (r["truth"] <= r["ci_high"] + 1e-12)
    r["whole"] = (r["ci_low"] <= 1e-9) & (r["ci_high"] >= 1 - 1e-9)
    print(f"\n{pop.name}: published intervals of empty domains by the domain's population N")
    for target in ("mean", "share"):
        for label, sel in (("N <= 3", r["N"] <= 3), ("N > 3", r["N"] > 3)):
            g = r[(r["target"] == target) & sel]
            if g.empty:
                continue
            whole = (
                f", {g['whole'].mean():.3f} of them the whole [0, 1]" if target == "share" else ""
            )
            print(
                f"  {target}s, {label}: coverage {g['covered'].mean():.3f} ({len(g)} rows{whole})"
            )


def _published_checks(pop, rows, target, cls, pub) -> list[tuple[str, bool]]:
    where = f"{pop.name} published {target}s, class {cls}:"
    out = []
    r = rows[rows["target"] == target]
    if cls != "all":
        r = r[size_class(r["n"]) == cls]
    wide = r.pivot_table(index=["rep", "cell_id"], columns="method", values="estimate")
    truth = r.groupby(["rep", "cell_id"])["truth"].first()
    for m in ("direct", "augmented"):
        if m not in wide.columns:
            continue
        both = wide[["published", m]].dropna()
        if both.empty:
            continue
        t = truth.loc[both.index]
        rp, rm = (float(np.sqrt(((both[c] - t) ** 2).mean())) for c in ("published", m))
        out.append((f"{where} RMSE {rp:.4g} <= {m} {rm:.4g} ({len(both)} domain x samples)",
                    bool(rp <= rm * (1 + 1e-9))))  # fmt: skip
    out.append((f"{where} coverage {pub.coverage:.3f} in [0.93, 0.97]",
                bool(0.93 <= pub.coverage <= 0.97)))  # fmt: skip
    return out


def compare(lib: pd.DataFrame, de: pd.DataFrame) -> dict[str, float]:
    """Largest library - dbt differences: estimate and SE relative to the spread of the
    estimates over cells; interval ends relative to the interval's half-width (the macro's t
    quantile is Hill's approximation, relative error below 5e-4); rows or synthetic-record
    counts that do not match."""
    both = lib.merge(de, on=["cell_id", "indicator"], suffixes=("_lib", "_dbt"))
    out = {"unmatched": float(len(lib) + len(de) - 2 * len(both)), "point": 0.0, "interval": 0.0}
    out["n_synthetic"] = float((both["n_synthetic_lib"] != both["n_synthetic_dbt"]).sum())
    for _, g in both.groupby("indicator"):
        scale = float(g["estimate_lib"].std()) or 1.0
        for c in ("estimate", "se"):
            d = np.nanmax(np.abs(g[f"{c}_lib"] - g[f"{c}_dbt"]).to_numpy(dtype=float))
            out["point"] = max(out["point"], float(d) / scale)
        half = ((g["ci_high_lib"] - g["ci_low_lib"]) / 2).to_numpy(dtype=float)
        for c in ("ci_low", "ci_high"):
            d = np.abs(g[f"{c}_lib"] - g[f"{c}_dbt"]).to_numpy(dtype=float)
            ok = half > 0
            out["interval"] = max(out["interval"], float(np.nanmax(d[ok] / half[ok], initial=0.0)))
    return out


def dbt_check(pop: Population, a: argparse.Namespace, kept: dict[int, pd.DataFrame]):
    """Run the first K samples through dbt and compare with the library path: target rows."""
    worst = {"unmatched": 0.0, "n_synthetic": 0.0, "point": 0.0, "interval": 0.0}
    head = f"{pop.name}: library vs dbt on {len(kept)} sample(s):"
    published, changed, dom = [], False, domains(pop)
    for rep, lib in kept.items():
        t0 = time.monotonic()
        try:
            de = dbt_cells(pop, a, rep)
        except (DbtFailed, duckdb.Error) as exc:
            print(f"  [{pop.name}] dbt build of replicate {rep + 1} failed: {exc}")
            return [(f"{head} the dbt build ran", False)]
        published.append(published_rows(pop, dom, de, rep, rep_seed(a.seed, rep)))
        if library_source() != LIBRARY_SOURCE:
            changed = True  # the dbt build ran other code than this process: not compared
            continue
        diff = compare(lib, de)
        print(
            f"  [{pop.name}] dbt build of replicate {rep + 1}: {time.monotonic() - t0:.0f}s; "
            + ", ".join(f"{k} {v:.3g}" for k, v in diff.items())
        )
        worst = {k: max(v, diff[k]) for k, v in worst.items()}
    checks = published_targets(pop, pd.concat(published, ignore_index=True))
    if changed:
        print("  note: surveysynth's source changed after this run imported it: not compared")
        return [
            (f"{head} not compared: the library's source changed during the run", None)
        ] + checks
    return [
        (f"{head} every cell x indicator in both, same synthetic-record counts",
         worst["unmatched"] == 0 and worst["n_synthetic"] == 0),
        (f"{head} estimate and SE differ by {worst['point']:.2e} x spread <= 1e-6",
         worst["point"] <= 1e-6),
        (f"{head} interval ends differ by {worst['interval']:.2e} x half-width <= 1e-3",
         worst["interval"] <= 1e-3),
    ] + checks  # fmt: skip


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--population",
        action="append",
        choices=sorted(POPULATIONS),
        help="repeat for several (default: swiss and belgian)",
    )
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--m", type=int, default=20, help="implicates (ss_synth_m)")
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--quick", action="store_true", help="10 replicates")
    ap.add_argument("--dbt", type=int, default=2, help="samples also run through dbt (0: none)")
    ap.add_argument("--n-mc", type=int, default=100, help="bootstrap replicates of the EBP's MSE")
    ap.add_argument(
        "--backtest-sizes",
        type=int,
        nargs="+",
        help="ss_backtest_sizes of the dbt builds (default: the project's; 0 empties cells)",
    )
    a = ap.parse_args(argv)
    if a.quick:
        a.reps = min(a.reps, 10)
    a.dbt = min(a.dbt, a.reps)
    t0 = time.monotonic()
    names = a.population or ["swiss", "belgian"]
    print(
        f"Real-population SAE benchmark: {', '.join(names)}; {a.reps} stratified samples each "
        f"(library path), m = {a.m}, seed {a.seed}; the first {a.dbt} also through dbt"
    )
    held = "withheld from" if holdout_in_synthesis() else "given to"
    print(
        f"The disclosure-risk holdout is {held} the synthesizer (models/disclosure/synthesis_responses)"
    )
    for fn, what in (("bhf_eblup", "BHF"), ("logistic_ebp", "EBP")):
        if _unit_level(fn) is None:
            print(f"note: surveysynth.estimation.unit_level.{fn} is not there yet: {what} is n/a")
    checks: list[tuple[str, bool | None]] = []
    for name in names:
        pop = POPULATIONS[name]()
        dom = domains(pop)
        print(
            f"\n== {pop.name}: {len(pop.units)} units, {len(dom)} domains ({' x '.join(pop.dims)}),"
            f" strata {pop.stratum}, sampling fraction {pop.fraction}; {pop.about}"
        )
        rows, kept = run(pop, a)
        sc = score(rows)
        print_table(pop, sc, rows)
        checks += targets(pop, sc)
        if a.dbt:
            checks += dbt_check(pop, a, kept)
    print("\nTargets")
    for text, ok in checks:
        print(f"  {'n/a ' if ok is None else ('PASS' if ok else 'MISS')}  {text}")
    print(f"\nTotal runtime {time.monotonic() - t0:.0f}s")
    return 1 if any(ok is False for _, ok in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
