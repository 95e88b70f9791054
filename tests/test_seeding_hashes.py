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


def test_entropy_words_are_numpys_own_words_of_the_key():
    """cell_rng / stream_rng hand SeedSequence the key's uint32 words: the same state as the
    list of integers itself (64-bit hashes, zeros, values at the word boundaries)."""
    from surveysynth.seeding import _entropy_words

    rng = np.random.default_rng(0)
    edges = [0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1]
    for _ in range(500):
        key = [int(rng.choice(edges)) if rng.random() < 0.5 else int(rng.integers(0, 2**63))]
        key += [int(rng.integers(0, 2**63)), int(rng.choice(edges)), int(rng.integers(1, 30))]
        want = np.random.SeedSequence(key).generate_state(8, np.uint64)
        got = np.random.SeedSequence(_entropy_words(key)).generate_state(8, np.uint64)
        assert np.array_equal(got, want), key
