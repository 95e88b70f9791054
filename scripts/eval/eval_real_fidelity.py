"""Real-data fidelity of replica mode: surveysynth against SDV and a no-dependence control.

Two real tables that ship inside Debian packages (scripts/eval/real_data.py fetches them):

  eusilc   14,827 persons of the synthetic Austrian EU-SILC 2006 (r-cran-laeken); cell = state
           (db040); design weight rb050; outcomes: equivalence scale eqSS (ordinal: it takes
           30 values), household size, age (count on the identity scale), sex (rb090,
           1 = female), economic status pl030 (categorical, missing for children),
           citizenship pb220a, the personal (py*) and household (hy*) income components and
           eqIncome (continuous, min 0 unless negative values occur). Dropped: the ids
           db030 / rb030 and db090 (equal to rb050).
  CPS1988  28,155 men, March 1988 CPS (r-cran-aer); cell = region; no weight; outcomes, in
           synthesis order: education (count), experience (count, min -4, identity scale),
           ethnicity (categorical), smsa and parttime (binary), wage (continuous, min 0).

``--as-loaded`` declares the outcomes as the tables load instead (CPS1988 in its column order,
wage first; age and experience with the count default link, log(y - min)), as a new user would
first type them (run both to see what the declaration costs).

Each table gets a constant wave and a unit id; the rows are split 50/50 by a seeded rule (a
unit is held out when md5("<seed>|<unit_id>")[:8] < 80000000, the rule of the project's
risk_holdout). Trained on the other half (m = 1):

  surveysynth         surveysynth.synthesis.api.synthesize, mode replica (the function the
                      synthetic_microdata model calls), hierarchical backend
  surveysynth unwtd   (eusilc) the same without the design weight: isolates what weighting does
  SDV GaussianCopula  the same call with ss_synth_backend sdv_gaussian_copula
  shuffled control    the training rows with every column permuted on its own (no dependence)
  fresh real          the held-out half: what a perfect synthesizer would look like

Metrics, each against the training half unless said otherwise (unweighted: records are
compared):
  S_pMSE       surveysynth.checks.fidelity.pmse: logistic propensity model with main effects and
               all pairwise interactions (Snoke et al. 2018), S_pMSE = pMSE / null expectation
  TSTR AUC     scikit-learn HistGradientBoostingClassifier trained on each table, tested on the
               held-out half; "train on real" is the training half
  quality      SDMetrics QualityReport score (column shapes and pair trends; sdmetrics 0.32
               averages pair trends only over pairs with real |correlation| > 0.5 or
               association > 0.3, and bins each table's numeric columns over its own range,
               so a few far outliers in one column can sink the score)
  pairs        every pairwise association (surveysynth.checks.dependence: Spearman, or Cramer's V
               with a nominal column) against the real-vs-real noise floor from 20 random
               half-splits of the whole table (Bonferroni, familywise 5%)
  skips        TV distance of P(column missing | other column's level or quintile bin),
               averaged over the bins, against its real-vs-real floor
  zeros        impossible combinations: structural zeros of the training half (an event never
               seen for a level or outside a range of another column, >= 10 expected) that the
               held-out half confirms (0 rows there); rows of each table that break one
  relations    exact functional relations target = f(source) of the training half: share of
               rows that follow the map
  spikes       values of numeric columns held by >= 5% of answers: share real vs synthetic,
               within the binomial noise of two samples (Bonferroni); surveysynth given the
               design weight reproduces the population, so its reference is the training
               half's design-weighted share (Kish's effective n), the others' the records'
               share (EU-SILC households of 1: 11.9% of records, 14.9% weighted)
  range        numeric values outside the training half's [min, max] (report only)
  regression   OLS of one outcome on others (eusilc: py010n on age, age^2, female; CPS1988:
               log wage on education, experience, experience^2, afam, smsa, parttime): sign and
               the CI overlap of each slope (Karr et al. 2006)
  time         wall seconds of synthesize() (fit + sample), surveysynth and SDV, after a warm-up

Targets (PASS / MISS, every row printed): S_pMSE <= half the control's; TSTR AUC within 0.03 of
train-on-real; quality above SDV's; relations and spikes kept; zero impossible combinations;
every pairwise association and skip within the floor; no sign flip and CI overlap >= 0.5.

    .venv/bin/python scripts/eval/eval_real_fidelity.py                   # both tables
    .venv/bin/python scripts/eval/eval_real_fidelity.py --table CPS1988
    .venv/bin/python scripts/eval/eval_real_fidelity.py --table eusilc --dbt   # + a dbt build

``--dbt`` also builds synthetic_microdata for eusilc through dbt by vars (the training half
and its weight totals per cell as Parquet, ss_synth_mode replica, ss_frame null) and scores it
beside the library path. Same arguments, same output.
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
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[2]
#: the demo configuration every build here starts from (the package defaults describe no survey)
DEMO_VARS = yaml.safe_load((ROOT / "demo" / "demo_vars.yml").read_text())
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_data import load

from surveysynth.checks import dependence as dep
from surveysynth.checks.fidelity import pmse
from surveysynth.contract.config import SynthConfig
from surveysynth.synthesis.api import support_table, synthesize

HOLDOUT_SHARE = 0.5
WAVE = "wave"
UNIT = "unit_id"
SYN = "surveysynth"
SYN_U = "surveysynth unwtd"
SDV = "SDV GaussianCopula"
CTRL = "shuffled control"
FRESH = "fresh real"
Terms = dict[str, Callable[[pd.DataFrame], np.ndarray]]


@dataclass
class Table:
    name: str
    data: pd.DataFrame  # unit id, wave, dims, outcomes, weight
    dims: list[str]
    outcomes: dict[str, dict]
    weight: str | None
    tstr: dict[str, tuple[str, Callable[[pd.DataFrame], np.ndarray]]]  # label -> (column, y)
    regression: tuple[str, Terms, Callable[[pd.DataFrame], pd.DataFrame]]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    train_w: np.ndarray | None = None  # the training half's design weights

    @property
    def columns(self) -> list[str]:
        return [*self.dims, *self.outcomes]

    @property
    def spec(self) -> dict[str, dict]:
        return {**{d: {"type": "categorical"} for d in self.dims}, **self.outcomes}


def _num(f: pd.DataFrame, c: str) -> np.ndarray:
    return pd.to_numeric(f[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


# ----------------------------------------------------------------------------- the tables
def eusilc(as_loaded: bool = False) -> Table:
    d = load("eusilc")
    t = pd.DataFrame({UNIT: "p" + d["rb030"].astype(str), WAVE: 2006, "db040": d["db040"]})
    # eqSS as text levels: dbt's staging reads ordinal values as text, so float levels
    # (1.0, 1.3, ...) would not match '1.0', '1.3' there
    eqss = d["eqSS"].map(lambda v: f"{v:.1f}")
    levels = sorted(eqss.unique(), key=float)
    out = {"eqSS": {"type": "ordinal", "levels": levels}, "hsize": {"type": "count", "min": 1}}
    out["age"] = {"type": "count", "min": float(d["age"].min())}
    if not as_loaded:  # ages are not a skewed count: the log link's tail reaches 250 years
        out["age"]["scale"] = "identity"
    out["rb090"] = {"type": "binary"}
    out["pl030"] = {"type": "categorical", "levels": [str(i) for i in range(1, 8)]}
    out["pb220a"] = {"type": "categorical", "levels": ["AT", "EU", "Other"]}
    t["eqSS"], t["hsize"], t["age"] = eqss, d["hsize"], d["age"]
    t["rb090"] = (d["rb090"] == "female").astype("int64")
    t["pl030"], t["pb220a"] = d["pl030"], d["pb220a"]
    money = [c for c in d.columns if c[:2] in ("py", "hy")] + ["eqIncome"]
    for c in money:
        t[c] = d[c].astype(float) + 0.0  # + 0.0: -0.0 -> 0.0
        out[c] = {"type": "continuous", "min": 0.0 if d[c].min() >= 0 else None}
    t["rb050"] = d["rb050"]

    def adults(f: pd.DataFrame) -> pd.DataFrame:
        return f[np.isfinite(_num(f, "py010n"))]

    terms: Terms = {
        "age": lambda f: _num(f, "age"),
        "age^2": lambda f: _num(f, "age") ** 2,
        "female": lambda f: _num(f, "rb090"),
    }
    tstr = {
        "female (rb090)": ("rb090", lambda f: _num(f, "rb090")),
        "full-time (pl030 = 1)": (
            "pl030",
            lambda f: np.where(f["pl030"].isna(), np.nan, (f["pl030"] == "1").astype(float)),
        ),
    }
    return Table("eusilc", t, ["db040"], out, "rb050", tstr, ("py010n", terms, adults))


def cps1988(as_loaded: bool = False) -> Table:
    d = load("CPS1988")
    t = pd.DataFrame({UNIT: [f"r{i:05d}" for i in range(len(d))], WAVE: 1988})
    t["region"] = d["region"]
    t["wage"] = d["wage"].astype(float)
    t["education"], t["experience"] = d["education"], d["experience"]
    t["ethnicity"] = d["ethnicity"]
    t["smsa"] = (d["smsa"] == "yes").astype("int64")
    t["parttime"] = (d["parttime"] == "yes").astype("int64")
    out = {
        "wage": {"type": "continuous", "min": 0.0},
        "education": {"type": "count", "min": 0.0},
        "experience": {"type": "count", "min": float(d["experience"].min())},
        "ethnicity": {"type": "categorical", "levels": ["afam", "cauc"]},
        "smsa": {"type": "binary"},
        "parttime": {"type": "binary"},
    }
    if not as_loaded:  # the response (wage) last; experience is not a skewed count either
        out["experience"]["scale"] = "identity"
        out = {c: out[c] for c in [*list(out)[1:], "wage"]}

    def logged(f: pd.DataFrame) -> pd.DataFrame:
        return f.assign(log_wage=np.log(np.clip(_num(f, "wage"), 1e-9, None)))

    terms: Terms = {
        "education": lambda f: _num(f, "education"),
        "experience": lambda f: _num(f, "experience"),
        "experience^2": lambda f: _num(f, "experience") ** 2,
        "afam": lambda f: (f["ethnicity"] == "afam").to_numpy(dtype=float),
        "smsa": lambda f: _num(f, "smsa"),
        "parttime": lambda f: _num(f, "parttime"),
    }
    tstr = {"parttime": ("parttime", lambda f: _num(f, "parttime"))}
    return Table("CPS1988", t, ["region"], out, None, tstr, ("log_wage", terms, logged))


TABLES = {"eusilc": eusilc, "CPS1988": cps1988}


# ----------------------------------------------------------------------------- synthesizers
def held_out(units: pd.Series, seed: int) -> np.ndarray:
    """risk_holdout's rule: md5("<seed>|<unit_id>")[:8] below the share of the hex range."""
    cut = f"{int(HOLDOUT_SHARE * 4294967296):08x}"
    draw = units.map(lambda u: hashlib.md5(f"{seed}|{u}".encode()).hexdigest()[:8])
    return (draw < cut).to_numpy()


def config(t: Table, seed: int, **over) -> SynthConfig:
    v = {
        "ss_unit_id": UNIT,
        "ss_wave": WAVE,
        "ss_cell_dims": t.dims,
        "ss_design_weight": t.weight,
        "ss_outcomes": t.outcomes,
        "ss_synth_m": 1,
        "ss_seed": seed,
        "ss_synth_mode": "replica",
    }
    return SynthConfig.from_vars(v, **over)


def totals(t: Table, rows: pd.DataFrame) -> pd.DataFrame:
    """Population count per cell: the sum of the design weights (or the count) of ``rows``,
    so that calibration to these totals leaves the design weights as they are."""
    w = rows[t.weight] if t.weight else pd.Series(1.0, index=rows.index)
    tot = rows.assign(_w=w).groupby(t.dims)["_w"].sum().round().rename("n_population")
    return tot.reset_index()


def run(train: pd.DataFrame, cfg: SynthConfig, tot: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    support = support_table(train, cfg, totals=tot)
    t0 = time.perf_counter()
    out = synthesize(train, None, support, cfg)
    secs = time.perf_counter() - t0
    out.attrs = {}
    return out[out["implicate"] == 1].reset_index(drop=True), secs


def shuffled(f: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5F]))
    return pd.DataFrame({c: f[c].to_numpy()[rng.permutation(len(f))] for c in f.columns})


def build(t: Table, seed: int, dbt: bool) -> None:
    """Fill t.frames (train, fresh real, candidates) and t.seconds."""
    hold = held_out(t.data[UNIT], seed)
    train = t.data[~hold].reset_index(drop=True)
    t.frames["train"], t.frames[FRESH] = train, t.data[hold].reset_index(drop=True)
    if t.weight:
        t.train_w = train[t.weight].to_numpy(dtype=float)
    cfg = config(t, seed)
    gc = cfg.with_(backend="sdv_gaussian_copula")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        few, tot = train.iloc[:600], totals(t, train)
        run(few, cfg, tot), run(few, gc, tot)  # warm-up: imports and first-call overheads
        t.frames[SYN], t.seconds[SYN] = run(train, cfg, tot)
        if t.weight:
            t.frames[SYN_U], t.seconds[SYN_U] = run(train, cfg.with_(weight=None), tot)
        t.frames[SDV], t.seconds[SDV] = run(train, gc, tot)
    _tick("synthesized", t0)
    t.frames[CTRL] = shuffled(train[t.columns], seed)
    if dbt:
        t1 = time.perf_counter()
        t.frames["surveysynth (dbt)"] = dbt_replica(t, train, seed)
        t.seconds["surveysynth (dbt)"] = time.perf_counter() - t1
    t.frames = {k: canonical(t, f) for k, f in t.frames.items()}


def candidates(t: Table) -> dict[str, pd.DataFrame]:
    order = [SYN, SYN_U, "surveysynth (dbt)", SDV, CTRL, FRESH]
    return {k: t.frames[k] for k in order if k in t.frames}


def canonical(t: Table, f: pd.DataFrame) -> pd.DataFrame:
    """The compared columns with one dtype per column whatever produced them: numbers as
    float (ordinal levels that are numbers too), text as object with None for missing."""
    out = {}
    for c in t.columns:
        spec = t.spec[c]
        numeric = spec["type"] in ("continuous", "count", "binary") or (
            spec["type"] == "ordinal" and all(isinstance(v, float) for v in spec["levels"])
        )
        if numeric:
            out[c] = _num(f, c)
        else:
            v = f[c].astype(object)
            out[c] = v.where(v.notna(), None).map(lambda x: x if x is None else str(x)).to_numpy()
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- metrics
def s_pmse(t: Table, f: pd.DataFrame) -> float:
    # ordinal levels as the fidelity module labels values (1.0 -> "1"), else they do not match
    spec = {
        c: {**v, "levels": [_label(x) for x in v["levels"]]} if v["type"] == "ordinal" else v
        for c, v in t.spec.items()
    }
    return pmse(t.frames["train"][t.columns], f, spec, seed=1)["s_pmse"]


def _label(x) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _features(f: pd.DataFrame, t: Table, drop: str, cats: dict) -> pd.DataFrame:
    x = {}
    for c in t.columns:
        if c == drop:
            continue
        if c in cats:
            lab = f[c].astype(object).where(f[c].notna(), "<missing>").astype(str)
            for lv in cats[c]:
                x[f"{c}={lv}"] = (lab == lv).to_numpy(dtype=float)
        else:
            x[c] = _num(f, c)
    return pd.DataFrame(x).to_numpy()


def tstr_auc(t: Table, f: pd.DataFrame, label: str) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    col, target = t.tstr[label]
    test = t.frames[FRESH]
    full = canonical(t, t.data)
    nominal = [c for c in t.columns if full[c].dtype == object]
    cats = {c: sorted(full[c].fillna("<missing>").astype(str).unique()) for c in nominal}
    y, ok = target(f), np.isfinite(target(f))
    if len(np.unique(y[ok])) < 2:
        return float("nan")
    clf = HistGradientBoostingClassifier(random_state=0, max_iter=80, learning_rate=0.15)
    with threadpool_limits(limits=1):  # OpenMP threads only contend on a shared machine
        clf.fit(_features(f, t, col, cats)[ok], y[ok].astype(int))
    yt = target(test)
    keep = np.isfinite(yt)
    p = clf.predict_proba(_features(test, t, col, cats)[keep])[:, 1]
    return float(roc_auc_score(yt[keep].astype(int), p))


def quality(t: Table, f: pd.DataFrame) -> float:
    from sdmetrics.reports.single_table import QualityReport

    meta = {"columns": {}}
    for c in t.columns:
        numeric = t.spec[c]["type"] in ("continuous", "count")
        meta["columns"][c] = {"sdtype": "numerical" if numeric else "categorical"}

    def prep(x: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                c: _num(x, c) if meta["columns"][c]["sdtype"] == "numerical" else _text(x[c])
                for c in t.columns
            }
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = QualityReport()
        rep.generate(prep(t.frames["train"]), prep(f), meta, verbose=False)
    return float(rep.get_score())


def _text(s: pd.Series) -> pd.Series:
    v = s.astype(object)
    return v.where(v.isna(), v.map(lambda x: str(x).removesuffix(".0")))


@dataclass
class Scores:
    rows: dict[str, dict[str, float]]
    pairs: pd.DataFrame
    skips: pd.DataFrame
    zeros: list
    zero_counts: dict[str, np.ndarray]
    relations: list
    spikes: pd.DataFrame
    regression: pd.DataFrame


def score(t: Table, n_splits: int, seed: int) -> Scores:
    kinds = dep.column_kinds(t.spec, t.data)
    cands = candidates(t)
    train = t.frames["train"]
    t0 = time.perf_counter()
    noise = dep.split_noise(t.data[t.columns], kinds, n_splits=n_splits, seed=seed)
    pairs = dep.association_check(train, cands, noise)
    skips = dep.missingness_check(train, cands, noise)
    found = dep.find_zeros(train, kinds)
    zeros = [z for z, n in zip(found, dep.violations(t.frames[FRESH], found, kinds)) if n == 0]
    counts = {k: dep.violations(f, zeros, kinds) for k, f in cands.items()}
    rels = dep.find_relations(train, t.columns)
    _tick(f"checks set up ({len(found)} zeros found)", t0)
    y, terms, prep = t.regression
    reg = dep.regression_check(train, cands, y, terms, prep)
    rows: dict[str, dict[str, float]] = {}
    for name, f in cands.items():
        r = rows.setdefault(name, {})
        r["S_pMSE (logit, pairwise)"] = s_pmse(t, f)
        for label in t.tstr:
            r[f"TSTR AUC {label}"] = tstr_auc(t, f, label)
        r["SDMetrics quality"] = quality(t, f)
        r["pairs beyond floor"] = float((~pairs[f"{name}_within"]).sum())
        r["worst pair |diff| / threshold"] = float(
            (pairs[f"{name}_diff"].abs() / pairs["threshold"]).max()
        )
        r["skips beyond floor"] = float((~skips[f"{name}_within"]).sum()) if len(skips) else 0.0
        r["impossible rows"] = float(dep.violating_rows(f, zeros, kinds))
        r["impossible rules broken"] = float((counts[name] > 0).sum())
        for rel in rels:
            r[f"relation {rel.target}=f({rel.source}) share"] = dep.relation_share(f, rel)
        r["values beyond real range"] = float(beyond_range(t, train, f))
        r["sign flips"] = float((~reg[f"{name}_same_sign"]).sum())
        r["min CI overlap"] = float(reg[f"{name}_overlap"].min())
        if name in t.seconds:
            r["fit + sample seconds"] = t.seconds[name]
        _tick(f"scored {name}", t0)
    rows.setdefault("train on real", {})
    for label in t.tstr:
        rows["train on real"][f"TSTR AUC {label}"] = tstr_auc(t, train, label)
    spikes = spike_table(t, kinds, cands)
    return Scores(rows, pairs, skips, zeros, counts, rels, spikes, reg)


def beyond_range(t: Table, train: pd.DataFrame, f: pd.DataFrame) -> int:
    """Numeric values below the training half's minimum or above its maximum."""
    n = 0
    for c in t.columns:
        if t.spec[c]["type"] in ("continuous", "count"):
            x, ref = _num(f, c), _num(train, c)
            n += int(np.sum((x < np.nanmin(ref)) | (x > np.nanmax(ref))))
    return n


#: candidates given the design weight: they reproduce the population, so their spikes are
#: compared with the training half's design-weighted shares
WEIGHTED = (SYN, "surveysynth (dbt)")


def spike_table(t: Table, kinds: dict, cands: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Spikes of the training half: each candidate's share at the value against the training
    half's (the design-weighted share, with Kish's effective n, for the WEIGHTED ones),
    within the binomial noise of the two samples (Bonferroni over the spikes)."""
    train = t.frames["train"]
    found = dep.find_spikes(train, kinds)
    from scipy import stats

    z = float(stats.norm.ppf(1 - 0.05 / (2 * max(len(found), 1))))
    rows = []
    for col, value, share in found:
        x = _num(train, col)
        ok = np.isfinite(x)
        row = {"column": col, "value": value, "train": share}
        ref = dict.fromkeys(cands, (share, int(ok.sum())))
        if t.train_w is not None:
            w = t.train_w[ok]
            row["train weighted"] = p = float(np.average(x[ok] == value, weights=w))
            ref.update(dict.fromkeys(WEIGHTED, (p, w.sum() ** 2 / np.sum(w**2))))
        for name, f in cands.items():
            p, n_ref = ref[name]
            s = dep.spike_share(f, col, value)
            m = max(int(np.isfinite(_num(f, col)).sum()), 1)
            row[name] = s
            row[f"{name}_ok"] = abs(s - p) <= z * np.sqrt(p * (1 - p) * (1 / n_ref + 1 / m))
        rows.append(row)
    return pd.DataFrame(rows)


def _tick(what: str, t0: float) -> None:
    print(f"  .. {what} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- printing
def _f(x: float) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    return f"{x:.0f}" if float(x).is_integer() and abs(x) >= 1 else f"{x:.3f}"


def print_scores(t: Table, s: Scores) -> None:
    n_tr, n_ho = len(t.frames["train"]), len(t.frames[FRESH])
    print(f"\n=== {t.name}: {len(t.data):,} rows, train {n_tr:,}, fresh real {n_ho:,} ===")
    table = pd.DataFrame(s.rows).map(_f)
    print(table.to_string())
    ratio = t.seconds[SDV] / t.seconds[SYN]
    print(
        f"  time SDV / surveysynth: {ratio:.2f}x ({t.seconds[SDV]:.1f}s vs {t.seconds[SYN]:.1f}s)"
    )
    print(
        f"  pairs: {len(s.pairs)}, threshold z* = {s.pairs['threshold'].iloc[0] / s.pairs['noise_sd'].iloc[0]:.2f} x noise sd;"
        f" skips: {len(s.skips)} (missing column, other column); impossible-combination rules:"
        f" {len(s.zeros)} confirmed by the fresh half"
    )
    cols = [SYN, *[c for c in (SYN_U, "surveysynth (dbt)") if c in t.frames]]
    worst = s.pairs.assign(ratio=s.pairs[f"{SYN}_diff"].abs() / s.pairs["threshold"])
    worst = worst.sort_values("ratio", ascending=False).head(12)
    keep = [
        "real",
        "noise_sd",
        "threshold",
        *[c for k in cols for c in (k, f"{k}_diff")],
        SDV,
        FRESH,
    ]
    print("  worst pairs for surveysynth (association real / synthetic, diff, threshold):")
    print(worst[keep + ["ratio"]].round(3).to_string(max_colwidth=40))
    if len(s.skips):
        bad = s.skips.index[~s.skips[f"{SYN}_within"]]
        given = sorted({i.split(" | ")[1] for i in bad})
        print(
            f"  skips beyond the floor for surveysynth: {len(bad)}, given {len(given)} columns: {given}"
        )
        w = s.skips.sort_values(SYN, ascending=False).head(8)
        print("  worst skips (TV of missing x other column):")
        print(w[["floor", "threshold", *cols, SDV, FRESH]].round(3).to_string())
    bad = np.flatnonzero(s.zero_counts[SYN])
    print(f"  impossible combinations broken by surveysynth ({len(bad)} rules):")
    top = sorted(bad, key=lambda i: -s.zero_counts[SYN][i])[:15]
    for i in top:
        extra = "  ".join(f"{k}: {s.zero_counts[k][i]}" for k in (SDV, CTRL))
        print(f"    {s.zero_counts[SYN][i]:5d}  {s.zeros[i].describe()}   [{extra}]")
    print("  ranges (training half vs surveysynth):")
    for c in t.columns:
        if t.spec[c]["type"] in ("continuous", "count"):
            x, ref = _num(t.frames[SYN], c), _num(t.frames["train"], c)
            lo, hi = np.nanmin(ref), np.nanmax(ref)
            n = int(np.sum((x < lo) | (x > hi)))
            print(
                f"    {c:11s} real [{lo:.6g}, {hi:.6g}]  synthetic [{np.nanmin(x):.6g}, {np.nanmax(x):.6g}]  {n} outside"
            )
    print("  spikes (share of answers at the value):")
    print(s.spikes.drop(columns=[c for c in s.spikes if c.endswith("_ok")]).round(3).to_string())
    print("  regression slopes (real, per table: coefficient, same sign, CI overlap):")
    print(s.regression.round(3).to_string())


def targets(t: Table, s: Scores) -> list[tuple[str, bool]]:
    r, out = s.rows, []
    ctrl = r[CTRL]["S_pMSE (logit, pairwise)"]
    for name in [c for c in (SYN, SYN_U, "surveysynth (dbt)") if c in r]:
        v = r[name]
        p = v["S_pMSE (logit, pairwise)"]
        out.append((f"{name}: S_pMSE {p:.2f} <= half the control's {ctrl:.2f}", p <= ctrl / 2))
        for label in t.tstr:
            a, b = v[f"TSTR AUC {label}"], r["train on real"][f"TSTR AUC {label}"]
            out.append(
                (f"{name}: TSTR AUC {label} {a:.3f} within 0.03 of real {b:.3f}", a >= b - 0.03)
            )
        q, qs = v["SDMetrics quality"], r[SDV]["SDMetrics quality"]
        out.append((f"{name}: SDMetrics quality {q:.3f} above SDV's {qs:.3f}", q > qs))
        for rel in s.relations:
            key = f"relation {rel.target}=f({rel.source}) share"
            a, b = v[key], r[FRESH][key]
            out.append(
                (f"{name}: {rel.describe()} holds in {a:.4f} of rows (fresh real {b:.4f})", a >= b)
            )
        ok = s.spikes[f"{name}_ok"] if len(s.spikes) else pd.Series([], dtype=bool)
        out.append(
            (f"{name}: spikes kept within noise, {int(ok.sum())} of {len(ok)}", bool(ok.all()))
        )
        n = v["impossible rows"]
        out.append(
            (f"{name}: impossible combinations: {n:.0f} rows ({len(s.zeros)} rules)", n == 0)
        )
        k = v["pairs beyond floor"]
        out.append(
            (
                f"{name}: pairwise associations beyond the noise floor: {k:.0f} of {len(s.pairs)}",
                k == 0,
            )
        )
        if len(s.skips):
            k = v["skips beyond floor"]
            out.append((f"{name}: skips beyond the noise floor: {k:.0f} of {len(s.skips)}", k == 0))
        f, o = v["sign flips"], v["min CI overlap"]
        out.append(
            (
                f"{name}: regression sign flips {f:.0f}, min CI overlap {o:.2f} >= 0.5",
                f == 0 and o >= 0.5,
            )
        )
    return out


# ----------------------------------------------------------------------------- dbt
def dbt_vars(t: Table, data: Path, seed: int) -> dict:
    return {
        "ss_responses": f"file:{data / 'responses.parquet'}",
        "ss_unit_id": UNIT,
        "ss_wave": WAVE,
        "ss_cell_dims": t.dims,
        "ss_variance_collapse": None,
        "ss_design_weight": t.weight,
        "ss_outcomes": t.outcomes,
        "ss_frame": None,
        "ss_frame_auxiliaries": [],
        "ss_population_totals": f"file:{data / 'totals.parquet'}",
        "ss_population_count": "n_population",
        "ss_ratio_estimators": {},
        "ss_quasi_identifiers": t.dims,
        "ss_sensitive": [next(iter(t.outcomes))],
        "ss_sdc_tables": [],
        "ss_synth_rules": [],
        "ss_fidelity_regression": None,
        "ss_backtest_enabled": False,
        "ss_synth_mode": "replica",
        "ss_synth_m": 1,
        "ss_seed": seed,
        "ss_risk_holdout_share": HOLDOUT_SHARE,
        "ss_synth_run_dir": str(data / "runs"),
    }


def dbt_replica(t: Table, train: pd.DataFrame, seed: int) -> pd.DataFrame:
    """synthetic_microdata built by dbt from the training half (its released synthesizer
    is fitted on every response it is given), population totals = the sum of the training
    half's design weights per cell."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="fidelity_dbt_") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        train.to_parquet(data / "responses.parquet", index=False)
        totals(t, train).to_parquet(data / "totals.parquet", index=False)
        db = work / "warehouse.duckdb"
        cmd = [str(Path(sys.executable).with_name("dbt")), "build", "--project-dir", str(ROOT)]
        cmd += ["--profiles-dir", str(ROOT), "--target", "duckdb"]
        cmd += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
        cmd += ["--select", "+synthetic_microdata", "--indirect-selection", "cautious"]
        cmd += ["--vars", json.dumps({**DEMO_VARS, **dbt_vars(t, data, seed)})]
        env = {
            **os.environ,
            "SURVEYSYNTH_DUCKDB_PATH": str(db),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join(x for x in proc.stdout.splitlines() if "ERROR" in x or "FAIL" in x)
            raise SystemExit(
                f"dbt build failed (exit {proc.returncode}):\n{tail}\n{proc.stdout[-3000:]}"
            )
        with duckdb.connect(str(db), read_only=True) as con:
            syn = con.sql("select * from synthetic_microdata where implicate = 1").df()
    return syn.rename(columns={"unit_id": UNIT, "wave": WAVE})


def dbt_vs_library(t: Table) -> None:
    a, b = t.frames[SYN], t.frames["surveysynth (dbt)"]
    print(f"\n  library vs dbt: rows {len(a):,} vs {len(b):,}")
    for c in t.outcomes:
        x, y = a[c], b[c]
        if t.outcomes[c]["type"] in ("continuous", "count"):
            xs, ys = np.sort(_num(a, c)), np.sort(_num(b, c))
            if len(xs) == len(ys):
                both = np.isfinite(xs) & np.isfinite(ys)
                d = float(np.max(np.abs(xs[both] - ys[both]))) if both.any() else 0.0
                print(
                    f"    {c:10s} mean {np.nanmean(xs):12.3f} vs {np.nanmean(ys):12.3f}; largest gap of sorted values {d:.4g}"
                )
        else:
            print(f"    {c:10s} shares differ by at most {_tv_shares(x, y):.4f}")


def _tv_shares(x: pd.Series, y: pd.Series) -> float:
    px = _text(x).fillna("<missing>").value_counts(normalize=True)
    py = _text(y).fillna("<missing>").value_counts(normalize=True)
    return float(px.sub(py, fill_value=0).abs().max())


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", choices=[*TABLES, "all"], default="all")
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--splits", type=int, default=20, help="real-vs-real half-splits")
    ap.add_argument("--dbt", action="store_true", help="also build eusilc's replica through dbt")
    ap.add_argument("--save", type=Path, help="write every compared table here (Parquet)")
    ap.add_argument(
        "--as-loaded",
        action="store_true",
        help="outcomes as a new user would first declare them: the table's column order and "
        "the count default (log) link for age and experience",
    )
    a = ap.parse_args(argv)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    names = list(TABLES) if a.table == "all" else [a.table]
    results = []
    for name in names:
        t = TABLES[name](as_loaded=a.as_loaded)
        t0 = time.perf_counter()
        build(t, a.seed, dbt=a.dbt and name == "eusilc")
        if a.save:
            a.save.mkdir(parents=True, exist_ok=True)
            for k, f in t.frames.items():
                f.to_parquet(a.save / f"{name}__{k.replace(' ', '_')}.parquet", index=False)
        s = score(t, a.splits, a.seed)
        print_scores(t, s)
        if "surveysynth (dbt)" in t.frames:
            dbt_vs_library(t)
        results += [(f"{name}: {m}", ok) for m, ok in targets(t, s)]
        print(f"  ({time.perf_counter() - t0:.0f}s)")
    print("\nTargets:")
    for text, ok in results:
        print(f"  {'PASS' if ok else 'MISS'}  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
