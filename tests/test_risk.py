"""Disclosure-risk metrics: each gate fails on a leaking release and passes on an honest one.

Planted data first (fast, exact answers), then a real public survey: the March 1988 Current
Population Survey extract shipped in the R package AER (CPS1988: 28,155 men, wage,
education, experience, ethnicity, SMSA, region, part-time), installed here from Debian's
r-cran-aer package (see :func:`load_cps1988`). It is the same kind of data as UCI Adult,
which no installed package ships offline.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from surveysynth.checks.risk import (
    DEFAULT_RISK_THRESHOLDS,
    METRIC_COLUMNS,
    MixedEncoding,
    disclosure_metrics,
    encode_mixed,
    membership_auc,
    nearest_neighbours,
    resolve_column_types,
)

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "data" / "ext"

# ------------------------------------------------------------------------------ real data


def load_cps1988() -> pd.DataFrame:
    """CPS1988 from Debian's r-cran-aer, cached as data/ext/cps1988.parquet.

    Downloads the .deb with `apt-get download` (running `apt-get update` once if the package
    lists are missing), unpacks it with `dpkg-deb -x`, and reads the .rda with `rdata`.
    Raises with the reason and the fix when it cannot: the risk tests must not skip."""
    cache = EXT / "cps1988.parquet"
    EXT.mkdir(parents=True, exist_ok=True)
    with open(EXT / ".cps1988.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cache.exists():
            _install_cps1988(cache)
    return pd.read_parquet(cache)


def _install_cps1988(cache: Path) -> None:
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"{tool} not found: the CPS1988 test data comes from Debian's r-cran-aer package; "
                f"run the tests on a Debian/Ubuntu machine, or place the CPS1988 data at {cache}"
            )
    with tempfile.TemporaryDirectory(dir=EXT) as tmp:
        tmp_path = Path(tmp)

        def download() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["apt-get", "download", "r-cran-aer"],
                cwd=tmp_path,
                check=False,
                capture_output=True,
                text=True,
            )

        got = download()
        if got.returncode != 0:
            upd = subprocess.run(
                ["apt-get", "update", "-qq"], check=False, capture_output=True, text=True
            )
            got = download()
            if got.returncode != 0:
                raise RuntimeError(
                    "could not download Debian package r-cran-aer (holds the CPS1988 test data): "
                    f"{got.stderr.strip() or got.stdout.strip()} / apt-get update: "
                    f"{upd.stderr.strip()[-500:]}. Needs apt-get with access to the Debian archive "
                    "(as root: apt-get update)."
                )
        debs = sorted(tmp_path.glob("r-cran-aer_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download r-cran-aer left no .deb in {tmp_path}")
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(tmp_path / "x")], check=True)
        rda = next((tmp_path / "x").rglob("AER/data/CPS1988.rda"), None)
        if rda is None:
            raise RuntimeError(f"{debs[-1].name} holds no AER/data/CPS1988.rda")
        import rdata

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = rdata.read_rda(str(rda))["CPS1988"]
        df = df.reset_index(drop=True)
        for c in ("ethnicity", "smsa", "region", "parttime"):
            df[c] = df[c].astype(str)
        for c in ("education", "experience"):
            df[c] = df[c].astype(float)
        df["wage"] = df["wage"].astype(float)
        part = cache.with_suffix(".tmp")
        df.to_parquet(part, index=False)
        part.replace(cache)


CPS_SPEC = {
    "wage": {"type": "continuous", "min": 0},
    "education": {"type": "count"},
    "experience": {"type": "count"},
    "ethnicity": {"type": "categorical"},
    "smsa": {"type": "categorical"},
    "region": {"type": "categorical"},
    "parttime": {"type": "categorical"},
}
CPS_QIS = ["region", "smsa", "ethnicity", "education", "experience"]
CPS_SENSITIVE = ["wage", "parttime"]


@pytest.fixture(scope="module")
def cps_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = load_cps1988()
    assert len(df) == 28155 and set(CPS_SPEC) <= set(df.columns)
    perm = np.random.default_rng(1988).permutation(len(df))
    half = len(df) // 2
    return (
        df.iloc[perm[:half]].reset_index(drop=True),
        df.iloc[perm[half:]].reset_index(drop=True),
    )


def marginal_synth(train: pd.DataFrame, by: list[str], seed: int) -> pd.DataFrame:
    """An honest (if crude) synthesizer: within each group of ``by``, every other column is
    drawn independently from the group's own values. It never sees the holdout."""
    rng = np.random.default_rng(seed)
    parts = []
    for _, grp in train.groupby(by, sort=True):
        out = grp[by].copy()
        for c in train.columns:
            if c not in by:
                out[c] = grp[c].to_numpy()[rng.integers(0, len(grp), len(grp))]
        parts.append(out)
    return pd.concat(parts, ignore_index=True)[list(train.columns)]


# ------------------------------------------------------------------------------ planted data

SPEC = {
    "region": "categorical",
    "sex": "categorical",
    "age": {"type": "count"},
    "education": {"type": "ordinal", "levels": ["primary", "secondary", "degree"]},
    "income": {"type": "continuous"},
    "married": {"type": "binary"},
}
QIS = ["region", "sex", "age"]
SENSITIVE = ["income", "married"]


def people(n: int, seed: int) -> pd.DataFrame:
    """Correlated mixed-type records with item nonresponse."""
    rng = np.random.default_rng(seed)
    region = rng.choice(
        ["north", "south", "east", "west", "islands"], n, p=[0.3, 0.3, 0.2, 0.17, 0.03]
    )
    age = rng.integers(18, 80, n)
    edu = np.clip((rng.normal(1 + (age < 40), 0.8)).round(), 0, 2).astype(int)
    income = np.round(np.exp(9 + 0.3 * edu + 0.01 * age + rng.normal(0, 0.5, n)), 2)
    married = (rng.random(n) < 1 / (1 + np.exp(-(age - 35) / 8))).astype(float)
    df = pd.DataFrame(
        {
            "region": region,
            "sex": rng.choice(["f", "m"], n),
            "age": age,
            "education": np.array(["primary", "secondary", "degree"])[edu],
            "income": income,
            "married": married,
        }
    )
    df.loc[rng.random(n) < 0.05, "income"] = np.nan
    df.loc[rng.random(n) < 0.03, "education"] = None
    return df


def metric(report: pd.DataFrame, name: str, column: str | None = None) -> pd.Series:
    rows = report[report["metric"] == name]
    if column is not None:
        rows = rows[rows["column"] == column]
    assert len(rows) == 1, f"expected one {name} row for {column}, got {len(rows)}"
    return rows.iloc[0]


GATED = [
    "exact_match_rate",
    "replicated_uniques",
    "dcr_share",
    "dcr_close_ratio",
    "membership_auc",
    "attribute_inference_advantage",
]


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, pd.DataFrame]:
    return people(1500, seed=1), people(1500, seed=2)


def test_report_shape_and_definitions(planted):
    train, holdout = planted
    rep = disclosure_metrics(train, holdout, people(1500, seed=3), QIS, SENSITIVE, SPEC)
    assert list(rep.columns) == list(METRIC_COLUMNS)
    assert set(rep["comparison"]) <= {"<=", ">="}
    assert rep["passed"].dtype == bool
    names = set(rep["metric"])
    assert names == {
        "exact_match_rate",
        "replicated_uniques",
        "dcr_share",
        "dcr_p5_ratio",
        "dcr_close_ratio",
        "membership_auc",
        "attribute_inference_advantage",
        "k_anonymity_min_class",
        "k_anonymity_small_class_share",
    }
    per_column = rep[rep["column"].notna()]
    assert set(per_column["metric"]) == {"attribute_inference_advantage"}
    assert sorted(per_column["column"]) == sorted(SENSITIVE)
    # report-only metrics pass and say so
    for name in ("dcr_p5_ratio", "k_anonymity_min_class", "k_anonymity_small_class_share"):
        row = metric(rep, name)
        assert np.isnan(row["threshold"]) and row["passed"] and "report only" in row["detail"]


def test_copy_of_training_rows_fails_every_gate(planted):
    train, holdout = planted
    rep = disclosure_metrics(train, holdout, train.copy(), QIS, SENSITIVE, SPEC)
    assert metric(rep, "exact_match_rate")["value"] == 1.0
    assert metric(rep, "membership_auc")["value"] > 0.95
    assert metric(rep, "dcr_share")["value"] > 0.95
    assert metric(rep, "dcr_close_ratio")["value"] > 10
    assert metric(rep, "attribute_inference_advantage", "income")["value"] > 0.3
    for name in GATED:
        assert not rep.loc[rep["metric"] == name, "passed"].all(), name
    assert not metric(rep, "attribute_inference_advantage", "income")["passed"]


def test_independent_draws_pass_with_null_values(planted):
    train, holdout = planted
    rep = disclosure_metrics(train, holdout, people(1500, seed=3), QIS, SENSITIVE, SPEC)
    assert abs(metric(rep, "membership_auc")["value"] - 0.5) < 0.04
    assert abs(metric(rep, "dcr_share")["value"] - 0.5) < 0.04
    assert 0.5 < metric(rep, "dcr_close_ratio")["value"] < 1.5
    for name in GATED:
        assert rep.loc[rep["metric"] == name, "passed"].all(), rep[rep["metric"] == name].to_dict(
            "records"
        )


def test_training_rows_plus_tiny_noise_fail_distance_gates_not_exact_match(planted):
    train, holdout = planted
    rng = np.random.default_rng(5)
    noisy = train.copy()
    noisy["income"] = noisy["income"] * (1 + rng.normal(0, 1e-4, len(noisy)))
    noisy["age"] = noisy["age"] + 0.01
    rep = disclosure_metrics(train, holdout, noisy, QIS, SENSITIVE, SPEC)
    assert metric(rep, "exact_match_rate")["passed"]  # no row is an exact copy any more ...
    assert metric(rep, "exact_match_rate")["value"] == 0.0
    for name in ("dcr_share", "dcr_close_ratio", "membership_auc"):  # ... but every row is near one
        assert not metric(rep, name)["passed"], name
    assert metric(rep, "membership_auc")["value"] > 0.9
    assert metric(rep, "dcr_share")["value"] > 0.9


@pytest.mark.parametrize("levels", [(3, 4, 2), (5,), (), (2, 2, 2, 2, 3)])
def test_nearest_neighbours_is_exact_against_brute_force(levels):
    rng = np.random.default_rng(len(levels))

    def enc(n: int) -> MixedEncoding:
        keys = (
            np.column_stack([rng.integers(0, k, n) for k in levels])
            if levels
            else np.zeros((n, 0), int)
        )
        # some rows far apart, so that searches cross one and several mismatches
        spread = rng.choice([0.3, 3.0, 6.0], size=(n, 1))
        return MixedEncoding(keys, rng.random((n, 2)) * spread)

    for _ in range(10):
        q, r = enc(250), enc(int(rng.integers(1, 120)))  # small refs leave blocks empty
        d, i = nearest_neighbours(q, r)
        d2 = (q.keys[:, None, :] != r.keys[None, :, :]).sum(-1) + (
            (q.num[:, None, :] - r.num[None, :, :]) ** 2
        ).sum(-1)
        np.testing.assert_allclose(d, np.sqrt(d2.min(axis=1)), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.sqrt(d2[np.arange(len(i)), i]), d, rtol=1e-12, atol=1e-12)


def test_encoding_costs_and_missing_values():
    a = pd.DataFrame(
        {"c": ["x", "y", None, "x"], "n": [1, 2, np.nan, 3], "o": ["lo", "hi", "lo", None]}
    )
    b = a.copy()
    b["n"] = b["n"].astype(float)  # int vs float must not matter
    kinds, levels = resolve_column_types(
        ["c", "n", "o"], {"o": {"type": "ordinal", "levels": ["lo", "hi"]}}, [a, b]
    )
    assert kinds == {"c": "nominal", "n": "numeric", "o": "ordinal"}
    ea, eb = encode_mixed([a, b], ["c", "n", "o"], kinds, levels, reference=[a])
    d, i = nearest_neighbours(eb, ea)
    np.testing.assert_array_equal(d, 0.0)  # every row finds itself, NaN matching NaN
    np.testing.assert_array_equal(i, np.arange(4))
    # a categorical mismatch costs exactly 1; a missing numeric vs observed at least 1
    one = pd.DataFrame({"c": ["y"], "n": [1.0], "o": ["lo"]})
    miss = pd.DataFrame({"c": ["x"], "n": [np.nan], "o": ["lo"]})
    e1, em, ea2 = encode_mixed(
        [one, miss, a.iloc[[0]]], ["c", "n", "o"], kinds, levels, reference=[a]
    )
    assert nearest_neighbours(e1, ea2)[0][0] == pytest.approx(1.0)
    assert nearest_neighbours(em, ea2)[0][0] >= 1.0


def test_exact_match_and_replicated_uniques_hand_computed():
    train = pd.DataFrame({"q": ["a", "a", "b", "c", "d"], "s": [1.0, 2.0, 3.0, 4.0, 5.0]})
    holdout = pd.DataFrame({"q": ["a", "b", "e", "f", "g"], "s": [1.0, 9.0, 9.0, 9.0, 9.0]})
    synthetic = pd.DataFrame({"q": ["b", "c", "c", "c", "z"], "s": [3.0, 7.0, 7.0, 4.0, 1.0]})
    rep = disclosure_metrics(train, holdout, synthetic, ["q"], ["s"], {"s": "continuous"})
    # synthetic rows (b, 3) and (c, 4) equal training rows: 2 of 5; holdout (a, 1): 1 of 5
    assert metric(rep, "exact_match_rate")["value"] == pytest.approx(0.4)
    assert metric(rep, "exact_match_rate")["threshold"] == pytest.approx(0.2 + 0.01)
    assert not metric(rep, "exact_match_rate")["passed"]
    # training uniques on q: b, c, d; replicated in synthetic: b, c -> 2 of 5 training rows
    assert metric(rep, "replicated_uniques")["value"] == pytest.approx(0.4)
    # holdout replicates b only -> 1/5 + tolerance
    assert metric(rep, "replicated_uniques")["threshold"] == pytest.approx(0.2 + 0.01)
    assert not metric(rep, "replicated_uniques")["passed"]
    # k-anonymity of synthetic rows on q: classes b (1 row), c (3), z (1)
    assert metric(rep, "k_anonymity_min_class")["value"] == 1
    assert metric(rep, "k_anonymity_small_class_share")["value"] == pytest.approx(0.4)  # k = 3
    rep2 = disclosure_metrics(
        train,
        holdout,
        synthetic,
        ["q"],
        ["s"],
        {"s": "continuous"},
        {
            "k_anonymity_k": 2,
            "k_anonymity_min_class_min": 2,
            "k_anonymity_small_class_share_max": 0.3,
        },
    )
    assert metric(rep2, "k_anonymity_small_class_share")["value"] == pytest.approx(0.4)
    assert not metric(rep2, "k_anonymity_small_class_share")["passed"]
    assert not metric(rep2, "k_anonymity_min_class")["passed"]
    # a bigger release is cut to the holdout's size for repU, and the detail says so
    big = pd.concat([synthetic] * 3, ignore_index=True)
    rep3 = disclosure_metrics(train, holdout, big, ["q"], ["s"], {"s": "continuous"})
    assert "both cut to 5 rows" in metric(rep3, "replicated_uniques")["detail"]


def test_membership_auc_counts_ties_half():
    assert membership_auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    assert membership_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert membership_auc(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == pytest.approx(0.625)


def test_unequal_sizes_deterministic_and_errors(planted):
    train, holdout = planted
    big = pd.concat([train, people(700, seed=9)], ignore_index=True)
    syn = people(800, seed=4)
    r1 = disclosure_metrics(big, holdout, syn, QIS, SENSITIVE, SPEC, seed=3)
    r2 = disclosure_metrics(big, holdout, syn, QIS, SENSITIVE, SPEC, seed=3)
    pd.testing.assert_frame_equal(r1, r2)
    assert "1500 training and 1500 holdout rows" in metric(r1, "dcr_share")["detail"]
    with pytest.raises(KeyError, match="mia_auc"):
        disclosure_metrics(train, holdout, syn, QIS, SENSITIVE, SPEC, {"mia_auc": 0.6})
    with pytest.raises(KeyError, match="'income'.*missing from input frame #2"):
        disclosure_metrics(train, holdout, syn.drop(columns="income"), QIS, SENSITIVE, SPEC)
    with pytest.raises(ValueError, match="both quasi-identifiers and sensitive"):
        disclosure_metrics(train, holdout, syn, QIS, ["age"], SPEC)
    with pytest.raises(ValueError, match="ordinal column 'education'"):
        bad = syn.copy()
        bad.loc[0, "education"] = "phd"
        disclosure_metrics(train, holdout, bad, QIS, SENSITIVE, SPEC)
    assert set(DEFAULT_RISK_THRESHOLDS) >= {"mia_auc_max", "dcr_share_max", "exact_match_tolerance"}


# ------------------------------------------------------------------------------ CPS1988


def test_cps_copy_of_training_rows_is_caught(cps_split):
    train, holdout = cps_split
    rep = disclosure_metrics(train, holdout, train.copy(), CPS_QIS, CPS_SENSITIVE, CPS_SPEC)
    assert metric(rep, "exact_match_rate")["value"] == 1.0
    # real data has duplicates: some holdout rows equal training rows too, but far fewer
    assert metric(rep, "exact_match_rate")["threshold"] < 0.15
    assert metric(rep, "membership_auc")["value"] > 0.9
    assert metric(rep, "dcr_share")["value"] > 0.9
    for name in (
        "exact_match_rate",
        "membership_auc",
        "dcr_share",
        "dcr_close_ratio",
        "replicated_uniques",
    ):
        assert not metric(rep, name)["passed"], name
    assert not metric(rep, "attribute_inference_advantage", "wage")["passed"]


def test_cps_honest_synthesizer_passes(cps_split):
    train, holdout = cps_split
    syn = marginal_synth(train, ["region", "ethnicity", "smsa"], seed=7)
    rep = disclosure_metrics(train, holdout, syn, CPS_QIS, CPS_SENSITIVE, CPS_SPEC)
    auc = metric(rep, "membership_auc")["value"]
    assert auc <= 0.55
    em = metric(rep, "exact_match_rate")
    holdout_rate = em["threshold"] - DEFAULT_RISK_THRESHOLDS["exact_match_tolerance"]
    assert em["value"] <= holdout_rate
    for name in GATED:
        assert rep.loc[rep["metric"] == name, "passed"].all(), rep[rep["metric"] == name].to_dict(
            "records"
        )
