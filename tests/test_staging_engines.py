"""Staging gives the same verdicts on PostgreSQL and Spark as on DuckDB: a small survey with
non-finite and absurd numbers, an unknown level with an apostrophe, a level with an apostrophe
and a binary coded 2, staged and quarantined alike (rows, problems, reasons, support map).

Only the staging layer is built, so this runs in about a minute; tests/test_engines.py compares
every model. Reasons quote the raw value as each engine writes it (inf / Infinity, 1e+300 /
1.0E300); that spelling is aligned before comparing, nothing else.
"""

from __future__ import annotations

import math

import engines
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from harness import run_dbt
from test_bad_inputs import frame, responses, write_parquet

SELECT = "+stg_responses +quarantined_responses +cell_support"
CAUTIOUS = ["--indirect-selection", "cautious"]
SCHEMA = "surveysynth"
TABLES = ["stg_responses", "quarantined_responses", "cell_support"]
ENGINE_SPELLING = {"Infinity": "inf", "NaN": "nan", "1.0E300": "1e+300"}
EXPECTED = {"not_finite": 4, "bad_weight": 2, "unknown_level": 2}
OUTCOMES = {
    "trading_status": {"type": "categorical", "levels": ["trading", "paused", "don't know"]},
    "turnover_change": {"type": "ordinal", "levels": ["decreased", "stayed_same", "increased"]},
    "turnover": {"type": "continuous", "min": 0},
    "employees": {"type": "count", "min": 0},
    "cash_reserves": {"type": "ordinal", "levels": ["none", "under_1_month"]},
    "applied_finance": {"type": "binary"},
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("staging_engines")
    fr = frame()
    resp = responses(fr).astype(object)
    resp["trading_status"] = resp["trading_status"].replace({"closed": "don't know"})
    plants = [
        ("turnover", math.inf),
        ("turnover", -math.inf),
        ("turnover", math.nan),
        ("employees", 1e300),
        ("design_weight", math.nan),
        ("design_weight", math.inf),
        ("trading_status", "it's gone"),
        ("applied_finance", 2),
    ]
    for i, (col, value) in enumerate(plants):
        resp.at[3 * i + 1, col] = value
    write_parquet(resp, out / "responses.parquet")
    pq.write_table(pa.Table.from_pandas(fr, preserve_index=False), out / "frame.parquet")
    return out, len(resp)


def _vars(responses_, frame_) -> dict:
    return {
        "ss_responses": responses_,
        "ss_frame": frame_,
        "ss_outcomes": OUTCOMES,
        "ss_max_quarantine_share": 0.5,
    }


def _is_number(v) -> bool:
    return not isinstance(v, bool) and (
        isinstance(v, (int, float)) or type(v).__name__ in ("Decimal", "int64", "float64", "int32")
    )


def _normalised(df: pd.DataFrame) -> pd.DataFrame:
    """Lower-case names, numbers as float64, everything else as text or None, rows sorted."""
    df = df.copy()
    df.columns = [c.lower() for c in df.columns]
    for c in df.columns:
        values = df[c].dropna()
        if len(values) and all(_is_number(v) for v in values):
            df[c] = pd.to_numeric(df[c].astype(object)).astype("float64")
        else:
            df[c] = [None if pd.isna(v) else str(v) for v in df[c].astype(object)]
    if "reason" in df.columns:
        for engine_text, duck_text in ENGINE_SPELLING.items():
            df["reason"] = df["reason"].str.replace(engine_text, duck_text, regex=False)
    cols = sorted(df.columns)
    return df[cols].sort_values(cols).reset_index(drop=True)


def _tables(get) -> dict[str, pd.DataFrame]:
    return {t: _normalised(get(t)) for t in TABLES}


@pytest.fixture(scope="module")
def duckdb_tables(inputs, tmp_path_factory):
    out, n_input = inputs
    files = _vars(f"file:{out / 'responses.parquet'}", f"file:{out / 'frame.parquet'}")
    res = run_dbt(tmp_path_factory.mktemp("duck"), files, select=SELECT, extra_args=CAUTIOUS)
    assert res.ok, res.output[-3000:]
    tables = _tables(lambda t: res.query(f"select * from main.{t}"))
    q = tables["quarantined_responses"]
    assert q.groupby("problem").size().to_dict() == EXPECTED
    assert len(tables["stg_responses"]) + q["_row_id"].nunique() == n_input
    return tables


def _same(engine: str, got: dict, ref: dict) -> None:
    for t in TABLES:
        pd.testing.assert_frame_equal(
            got[t], ref[t], check_dtype=False, rtol=1e-9, obj=f"{engine} {t}"
        )


def test_postgres_stages_like_duckdb(inputs, duckdb_tables, postgres_server, tmp_path):
    out, _ = inputs
    pg = postgres_server
    vars_ = _vars(
        pg.load_parquet(out / "responses.parquet", "survey_input", "responses"),
        pg.load_parquet(out / "frame.parquet", "survey_input", "frame"),
    )
    env = pg.dbt_env(SCHEMA)
    res = run_dbt(tmp_path, vars_, target="postgres", env=env, select=SELECT, extra_args=CAUTIOUS)
    assert res.ok, res.output[-3000:]
    _same("postgres", _tables(lambda t: pg.query(f"select * from {SCHEMA}.{t}")), duckdb_tables)


def test_spark_stages_like_duckdb(inputs, duckdb_tables, tmp_path):
    out, _ = inputs
    spark_dir = tmp_path / "spark"
    files = _vars(f"file:{out / 'responses.parquet'}", f"file:{out / 'frame.parquet'}")
    env = engines.spark_env(spark_dir, SCHEMA)
    res = run_dbt(tmp_path, files, target="spark", env=env, select=SELECT, extra_args=CAUTIOUS)
    assert res.ok, res.output[-3000:]
    got = _tables(lambda t: engines.read_spark_table(spark_dir, t, SCHEMA))
    _same("spark", got, duckdb_tables)
