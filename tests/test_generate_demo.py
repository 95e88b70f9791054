"""Tests for scripts/demo/generate_demo.py, the demo survey-world generator.

The generator feeds every other test and the demo build, so these pin what downstream
code relies on: byte-identical output per seed, the table schemas and value domains,
skip logic, a truth table that is internally consistent and agrees with the responses,
and the sparse pattern (thin Scottish micro cells, well-supported large cells in the
big regions) that the whole project exists to handle.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "demo" / "generate_demo.py"
TABLES = ("frame", "population_totals", "sample", "responses", "demo_truth")
SMALL = ["--frame-size", "5000", "--target-responses-per-wave", "500"]


def _load_module() -> ModuleType:
    """Import the script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("generate_demo", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_demo"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


gd = _load_module()


def _run(out: Path, *args: str) -> dict[str, object]:
    return gd.generate(gd.parse_args(["--out", str(out), *args]))


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def _read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / f"{name}.parquet", dtype_backend="numpy_nullable")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("demo_default")
    return out, _run(out)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small world written through the real command line, with CSV copies."""
    out = tmp_path_factory.mktemp("demo_small")
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), "--seed", "7", "--csv", *SMALL]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    assert "sparse pattern" in done.stdout
    return out


# ---------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files(small_run: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    _run(again, "--seed", "7", "--csv", *SMALL)
    first = _digests(small_run)
    assert set(first) == {f"{t}.{ext}" for t in TABLES for ext in ("parquet", "csv")}
    assert _digests(again) == first


def test_different_seed_gives_different_files(small_run: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    _run(other, "--seed", "8", *SMALL)
    first, second = _digests(small_run), _digests(other)
    for table in TABLES:
        assert first[f"{table}.parquet"] != second[f"{table}.parquet"], table


def test_parquet_has_no_pandas_metadata(small_run: Path) -> None:
    for table in TABLES:
        assert pq.read_schema(small_run / f"{table}.parquet").metadata is None


# ---------------------------------------------------------------------------- schemas

EXPECTED_SCHEMA = {
    "frame": [
        ("business_id", pa.string()),
        ("region", pa.string()),
        ("sector", pa.string()),
        ("size_band", pa.string()),
        ("register_employment", pa.int64()),
        ("register_turnover", pa.float64()),
    ],
    "population_totals": [
        ("region", pa.string()),
        ("sector", pa.string()),
        ("size_band", pa.string()),
        ("n_population", pa.int64()),
        ("register_employment", pa.int64()),
        ("register_turnover", pa.float64()),
    ],
    "sample": [
        ("business_id", pa.string()),
        ("wave", pa.int64()),
        ("region", pa.string()),
        ("sector", pa.string()),
        ("size_band", pa.string()),
        ("design_weight", pa.float64()),
        ("responded", pa.bool_()),
    ],
    "responses": [
        ("business_id", pa.string()),
        ("wave", pa.int64()),
        ("region", pa.string()),
        ("sector", pa.string()),
        ("size_band", pa.string()),
        ("design_weight", pa.float64()),
        ("trading_status", pa.string()),
        ("turnover_change", pa.string()),
        ("turnover", pa.float64()),
        ("employees", pa.int64()),
        ("cash_reserves", pa.string()),
        ("applied_finance", pa.int64()),
    ],
    "demo_truth": [
        ("region", pa.string()),
        ("sector", pa.string()),
        ("size_band", pa.string()),
        ("wave", pa.int64()),
        ("indicator", pa.string()),
        ("true_value", pa.float64()),
    ],
}


@pytest.mark.parametrize("table", TABLES)
def test_schema(small_run: Path, table: str) -> None:
    schema = pq.read_schema(small_run / f"{table}.parquet")
    assert [(f.name, f.type) for f in schema] == EXPECTED_SCHEMA[table]


def test_csv_matches_parquet(small_run: Path) -> None:
    for table in TABLES:
        from_csv = pd.read_csv(small_run / f"{table}.csv")
        from_parquet = pd.read_parquet(small_run / f"{table}.parquet")
        assert list(from_csv.columns) == list(from_parquet.columns)
        assert len(from_csv) == len(from_parquet)


# ---------------------------------------------------------------------------- value domains


def test_frame_domains(default_run: tuple[Path, dict[str, object]]) -> None:
    out, _ = default_run
    frame = _read(out, "frame")
    assert len(frame) == 200_000
    assert frame.business_id.is_unique and frame.business_id.is_monotonic_increasing
    assert frame.business_id.str.fullmatch(r"B\d{7}").all()
    assert set(frame.region) == set(gd.REGIONS)
    assert set(frame.sector) == set(gd.SECTORS)
    assert set(frame.size_band) == set(gd.SIZE_BANDS)
    bounds = {"0-9": (1, 9), "10-49": (10, 49), "50-249": (50, 249), "250+": (250, None)}
    for band, (lo, hi) in bounds.items():
        emp = frame.register_employment[frame.size_band == band]
        assert emp.min() >= lo and (hi is None or emp.max() <= hi), band
    assert (frame.register_turnover > 0).all()
    shares = frame.size_band.value_counts(normalize=True)
    assert 0.84 < shares["0-9"] < 0.92 and 0.004 < shares["250+"] < 0.01
    scotland = (frame.region == "scotland").mean()
    assert 0.02 < scotland < 0.03
    assert frame.region.value_counts().idxmin() == "scotland"


def test_population_totals_match_frame(default_run: tuple[Path, dict[str, object]]) -> None:
    out, _ = default_run
    frame, totals = _read(out, "frame"), _read(out, "population_totals")
    keys = ["region", "sector", "size_band"]
    agg = (
        frame.groupby(keys)
        .agg(
            n=("business_id", "size"),
            emp=("register_employment", "sum"),
            turn=("register_turnover", "sum"),
        )
        .reset_index()
    )
    merged = totals.merge(agg, on=keys, validate="one_to_one")
    assert len(merged) == len(totals) == len(agg)
    assert (merged.n_population == merged.n).all()
    assert (merged.register_employment == merged.emp).all()
    np.testing.assert_allclose(merged.register_turnover, merged.turn, rtol=1e-12)


def test_sample_design(default_run: tuple[Path, dict[str, object]]) -> None:
    out, _ = default_run
    sample, totals = _read(out, "sample"), _read(out, "population_totals")
    keys = ["region", "sector", "size_band"]
    assert sample.wave.between(1, 4).all()
    assert not sample.duplicated(["wave", "business_id"]).any()
    assert sample.sort_values(["wave", "business_id"]).index.equals(sample.index)
    n_h = sample.groupby(["wave", *keys]).size().rename("n").reset_index()
    # Rotating panel: stratum sample sizes are the same in every wave.
    assert (n_h.groupby(keys).n.nunique() == 1).all()
    check = n_h.merge(totals, on=keys).merge(
        sample.groupby(["wave", *keys]).design_weight.agg(["min", "max"]).reset_index(),
        on=["wave", *keys],
    )
    np.testing.assert_allclose(check["min"], check.n_population / check.n)
    np.testing.assert_allclose(check["max"], check["min"])
    large = check[check.size_band == "250+"]
    assert (large.n == large.n_population).all()  # take-all
    # The panel persists: most wave-1 units are still sampled in wave 2.
    w1 = set(sample.business_id[sample.wave == 1])
    w2 = set(sample.business_id[sample.wave == 2])
    assert 0.85 < len(w1 & w2) / len(w1) < 1.0
    # Unit response by size band: micros low, large high.
    rate = sample.groupby("size_band").responded.mean()
    assert 0.2 <= rate["0-9"] <= 0.3 and 0.6 <= rate["250+"] <= 0.75


def test_responses_domains(default_run: tuple[Path, dict[str, object]]) -> None:
    out, _ = default_run
    resp, sample = _read(out, "responses"), _read(out, "sample")
    per_wave = resp.groupby("wave").size()
    assert list(per_wave.index) == [1, 2, 3, 4]
    assert per_wave.between(9_000, 11_000).all()
    assert resp.sort_values(["wave", "business_id"]).index.equals(resp.index)
    # Respondents are exactly the sampled units flagged as responded, same weights.
    responded = sample[sample.responded].drop(columns="responded").reset_index(drop=True)
    pd.testing.assert_frame_equal(resp[responded.columns], responded)
    for name, levels in gd.CATEGORICAL_LEVELS.items():
        values = resp[name].dropna().astype(str)
        assert set(values) <= set(levels), name
    assert (resp.turnover.dropna() >= 0).all()
    assert (resp.employees.dropna() >= 0).all()


def test_skip_logic(default_run: tuple[Path, dict[str, object]]) -> None:
    out, _ = default_run
    resp = _read(out, "responses")
    stopped = resp.trading_status.isin(["closed", "paused"]).fillna(False)
    assert stopped.sum() > 100
    assert (resp.turnover[stopped].dropna() == 0).all()
    closed = (resp.trading_status == "closed").fillna(False)
    assert (resp.employees[closed].dropna() == 0).all()
    assert not (resp.turnover_change[stopped] == "increased").fillna(False).any()
    trading = (resp.trading_status == "trading").fillna(False)
    zero_share = (resp.turnover[trading].dropna() == 0).mean()
    assert 0.005 < zero_share < 0.1  # some trading units report no turnover


def test_item_missingness_by_size(default_run: tuple[Path, dict[str, object]]) -> None:
    out, _ = default_run
    resp = _read(out, "responses")
    rates = resp[list(gd.OUTCOMES)].isna().groupby(resp.size_band).mean()
    for item in gd.OUTCOMES:
        assert rates.loc["0-9", item] > rates.loc["250+", item], item
    assert rates.loc["0-9", "trading_status"] < 0.03
    for item in ("turnover", "cash_reserves", "applied_finance"):
        assert 0.07 < rates.loc["0-9", item] < 0.18, item


# ---------------------------------------------------------------------------- truth


def test_truth_shares_sum_to_one(default_run: tuple[Path, dict[str, object]]) -> None:
    out, _ = default_run
    truth, totals = _read(out, "demo_truth"), _read(out, "population_totals")
    n_ind = 2 + sum(len(v) for v in gd.CATEGORICAL_LEVELS.values())
    assert len(truth) == len(totals) * 4 * n_ind
    keys = ["region", "sector", "size_band"]
    assert not truth.duplicated([*keys, "wave", "indicator"]).any()
    truth["variable"] = truth.indicator.str.split("=").str[0]
    shares = truth[truth.indicator.str.contains("=")]
    sums = shares.groupby([*keys, "wave", "variable"]).true_value.sum()
    assert len(sums) == len(totals) * 4 * len(gd.CATEGORICAL_LEVELS)
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    assert shares.true_value.between(0, 1).all()
    numeric = truth[~truth.indicator.str.contains("=")]
    assert set(numeric.indicator) == {"turnover", "employees"}
    assert (numeric.true_value >= 0).all()


def test_truth_has_the_small_region_micro_interaction(
    default_run: tuple[Path, dict[str, object]],
) -> None:
    """Scottish micros are far worse off; Scotland's larger units are not."""
    out, _ = default_run
    truth, totals = _read(out, "demo_truth"), _read(out, "population_totals")
    t = truth.merge(totals[["region", "sector", "size_band", "n_population"]])
    t["scotland"] = t.region == "scotland"
    t["micro"] = t.size_band == "0-9"
    t["wv"] = t.true_value * t.n_population
    g = t.groupby(["indicator", "scotland", "micro"])[["wv", "n_population"]].sum()
    mean = g.wv / g.n_population
    closed = "trading_status=closed"
    assert mean[closed, True, True] > 2 * mean[closed, False, True]
    assert mean[closed, True, False] <= mean[closed, False, False]
    assert mean["applied_finance=1", True, True] > 1.5 * mean["applied_finance=1", False, True]
    assert mean["cash_reserves=none", True, True] > 1.5 * mean["cash_reserves=none", False, True]
    assert mean["turnover", True, True] < 0.5 * mean["turnover", False, True]
    # Truth varies by wave too.
    by_wave = t[t.indicator == closed].groupby("wave").wv.sum()
    assert by_wave.is_monotonic_increasing  # closure is absorbing


def test_responses_agree_with_truth(default_run: tuple[Path, dict[str, object]]) -> None:
    """Nonresponse is MAR within cells: cell-level reweighting recovers the truth."""
    out, _ = default_run
    resp, truth = _read(out, "responses"), _read(out, "demo_truth")
    totals = _read(out, "population_totals")
    keys = ["region", "sector", "size_band"]
    r = resp[resp.wave == 1].dropna(subset=["trading_status"])
    r = r.merge(totals[[*keys, "n_population"]], on=keys)
    r["w"] = r.n_population / r.groupby(keys).business_id.transform("size")
    est = np.average(r.trading_status == "paused", weights=r.w)
    t = truth[(truth.wave == 1) & (truth.indicator == "trading_status=paused")]
    t = t.merge(totals, on=keys)
    true = np.average(t.true_value, weights=t.n_population)
    assert abs(est - true) < 0.015


# ---------------------------------------------------------------------------- sparse pattern


def test_sparse_pattern_at_default_size(default_run: tuple[Path, dict[str, object]]) -> None:
    out, summary = default_run
    sparse = summary["sparse"]
    assert sparse["ok"]
    resp = _read(out, "responses")
    frame = _read(out, "frame")
    # Recompute from the files, independently of the generator's own check.
    micro = resp[(resp.region == "scotland") & (resp.size_band == "0-9")]
    counts = (
        micro.groupby(["sector", "wave"])
        .size()
        .reindex(pd.MultiIndex.from_product([gd.SECTORS, [1, 2, 3, 4]]), fill_value=0)
    )
    assert (counts < 10).sum() * 2 >= len(counts)
    assert (counts <= 3).sum() >= 8  # many nearly empty
    assert (counts == 0).sum() >= 1  # some empty
    assert (counts < 10).sum() == sparse["small_micro_below_10"]
    large = resp[resp.region.isin(gd.BIG_REGIONS) & (resp.size_band == "250+")]
    large_counts = (
        large.groupby(["region", "sector", "wave"])
        .size()
        .reindex(
            pd.MultiIndex.from_product([gd.BIG_REGIONS, gd.SECTORS, [1, 2, 3, 4]]),
            fill_value=0,
        )
    )
    assert (large_counts >= 10).all()
    # Every Scottish micro cell exists in the population: thin, not structurally empty.
    pop = frame[(frame.region == "scotland") & (frame.size_band == "0-9")]
    assert set(pop.sector) == set(gd.SECTORS)


# ---------------------------------------------------------------------------- sizes and CLI


def test_small_world_is_consistent(small_run: Path) -> None:
    frame = _read(small_run, "frame")
    resp = _read(small_run, "responses")
    truth = _read(small_run, "demo_truth")
    totals = _read(small_run, "population_totals")
    assert len(frame) == 5000 and totals.n_population.sum() == 5000
    assert resp.groupby("wave").size().between(350, 650).all()
    n_ind = 2 + sum(len(v) for v in gd.CATEGORICAL_LEVELS.values())
    assert len(truth) == len(totals) * 4 * n_ind


def test_waves_option(tmp_path: Path) -> None:
    summary = _run(
        tmp_path, "--waves", "2", "--frame-size", "2000", "--target-responses-per-wave", "200"
    )
    assert len(summary["respondents_per_wave"]) == 2
    assert set(_read(tmp_path, "sample").wave) == {1, 2}


def test_scale_flag_resolves_sizes() -> None:
    cfg = gd.parse_args(["--scale"])
    assert cfg.frame_size == 10_000_000
    assert cfg.target_responses_per_wave * cfg.waves >= 1_000_000
    assert gd.id_width(cfg.frame_size) == 8
    default = gd.parse_args([])
    assert (default.frame_size, default.target_responses_per_wave, default.waves) == (
        200_000,
        10_000,
        4,
    )
