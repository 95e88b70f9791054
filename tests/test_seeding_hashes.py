"""Row hashes of the content hash: equal to pandas' hash_pandas_object of the columns in name
order, whatever the column types (the column-by-column path must not change a hash)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.seeding import content_hash, row_hashes


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.array([f"u{i:06d}" for i in rng.permutation(n)], dtype=object)
    with_null = ids.copy()
    with_null[::97] = None
    mixed = ids.copy()
    mixed[::50] = 7  # an int among text
    late = ids.copy()
    late[-1] = None  # text up to the last row
    nan_text = rng.choice(["a", "b", "c"], n).astype(object)
    nan_text[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "unit": ids,
            "unit_nulls": with_null,
            "mixed": mixed,
            "late_null": late,
            "status": nan_text,
            "wave": rng.integers(2020, 2024, n),
            "sales": np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n)),
            "staff": pd.array(np.where(rng.random(n) < 0.05, None, rng.integers(0, 9, n)), "Int64"),
            "flag": rng.random(n) < 0.5,
            "size": pd.Categorical(rng.choice(["s", "m", "l"], n)),
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 99, n), "D"),
            "text": pd.array(ids, dtype="string"),
        }
    )


def test_row_hashes_equal_pandas_hash_of_sorted_columns():
    for n in (1, 10, 1023, 1024, 5000):
        df = _frame(n, seed=n)
        df = df[list(reversed(df.columns))]  # name order is the hash's, not the frame's
        want = pd.util.hash_pandas_object(df[sorted(df.columns)], index=False).to_numpy()
        assert np.array_equal(row_hashes(df), want)
        for c in df.columns:  # one column at a time, each type on its own
            one = pd.util.hash_pandas_object(df[[c]], index=False).to_numpy()
            assert np.array_equal(row_hashes(df[[c]]), one), c


def test_content_hash_is_order_free_and_sees_a_changed_value():
    df = _frame(3000)
    assert content_hash(df) == content_hash(df.sample(frac=1.0, random_state=1))
    changed = df.copy()
    changed.loc[17, "unit"] = "someone else"
    assert content_hash(changed) != content_hash(df)
