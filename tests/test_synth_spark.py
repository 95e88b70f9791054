"""The per-cell SAMPLE function under PySpark ``groupBy(...).applyInPandas`` gives the same
rows, bit for bit, as the pandas path (local Spark, one core)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from surveysynth.synthesis.api import synthesize, synthesize_spark
from surveysynth.synthesis.planted import planted_survey


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("surveysynth-test-synth")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    yield session
    session.stop()


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Same rows in the same order with engine-neutral types (nullable ints as float, text as
    object with None), so the comparison is on values."""
    out = df.sort_values(["cell_id", "period", "implicate", "unit"]).reset_index(drop=True).copy()
    for c in out.columns:
        s = out[c]
        if str(s.dtype) in ("Int64", "int64", "int32", "float64", "Float64"):
            out[c] = pd.to_numeric(s).astype("float64")
        elif s.dtype == bool or str(s.dtype) == "boolean":
            out[c] = s.astype(bool)
        else:
            out[c] = s.astype(object).where(s.notna(), None)
    return out


@pytest.mark.slow
def test_spark_apply_in_pandas_matches_pandas(spark):
    rng = np.random.default_rng(4)
    n = rng.integers(0, 12, size=4 * 3 * 3)
    w = planted_survey(n_regions=4, n_sectors=3, waves=2, n_per_cell=n, N_per_cell=40, seed=4)
    cfg = w["config"].with_(m=3)
    local = synthesize(w["responses"], w["frame"], w["support"], cfg)
    sdf = synthesize_spark(spark, w["responses"], w["frame"], w["support"], cfg)
    remote = sdf.toPandas()
    assert len(remote) == len(local) > 500
    a, b = _canonical(remote), _canonical(local)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
