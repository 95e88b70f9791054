"""Stable hashing and random streams.

Random streams are keyed by (run seed, cell, wave, implicate) through
``numpy.random.SeedSequence``, so a cell's draws do not depend on which other cells are
synthesized, on row order, on the engine (pandas or Spark) or on the process. Hashes come
from ``hashlib`` (Python's ``hash()`` is salted per process).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
from typing import Any

import numpy as np
import pandas as pd


def stable_int_hash(value: Any) -> int:
    """A 64-bit non-negative integer hash of ``str(value)`` that is stable across runs."""
    return _hash_text(key_str(value))


@functools.lru_cache(maxsize=65536)
def _hash_text(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def key_str(value: Any) -> str:
    """Canonical text of a key: integral numbers print without a decimal point, so a wave
    read as int64 in pandas and as a double elsewhere seeds the same stream."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def cell_rng(seed: int, cell_id: str, wave: Any, implicate: int) -> np.random.Generator:
    """The random stream of one cell x wave x implicate."""
    key = [
        int(seed) & 0xFFFFFFFFFFFFFFFF,
        stable_int_hash(cell_id),
        stable_int_hash(wave),
        int(implicate),
    ]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_entropy_words(key))))


def _entropy_words(key: list[int]) -> list[int] | np.ndarray:
    """The uint32 words numpy's ``SeedSequence`` makes of a list of non-negative integers
    (each integer's 32-bit words, least significant first; one word for 0): given as an array,
    it skips converting the list (about 5 us of a stream's 13 on a 100k replica's 2304 groups).
    The same entropy, so the same stream; a negative integer is left to numpy (an error)."""
    if min(key) < 0:
        return key
    words = []
    for v in key:
        words.append(v & 0xFFFFFFFF)
        while v > 0xFFFFFFFF:
            v >>= 32
            words.append(v & 0xFFFFFFFF)
    return np.array(words, dtype=np.uint32)


def stream_rng(seed: int, *labels: Any) -> np.random.Generator:
    """A named auxiliary stream (e.g. the fit's dequantisation jitter)."""
    key = [int(seed) & 0xFFFFFFFFFFFFFFFF, *(stable_int_hash(x) for x in labels)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_entropy_words(key))))


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """uint64 hash of every row over all columns (in name order): the values of
    ``pandas.util.hash_pandas_object(df[sorted columns], index=False)``, computed column by
    column so that a text column of (nearly) distinct values, such as unit ids, is hashed
    directly instead of through a factorisation (the same hash values: pandas hashes each
    distinct text once and takes them by code, which is the value's own hash)."""
    cols = sorted(map(str, df.columns))
    if not len(df):
        return np.zeros(0, dtype=np.uint64)
    if not df.columns.is_unique or any(not isinstance(c, str) for c in df.columns):
        return pd.util.hash_pandas_object(df[cols], index=False).to_numpy()
    return _combine([_column_hash(df[c]) for c in cols])


def _column_hash(s: pd.Series) -> np.ndarray:
    v = s.to_numpy() if s.dtype == object else None
    if v is not None and len(v) >= 1024 and _distinct_text(v):
        return pd.util.hash_array(v, categorize=False)
    if v is not None and len(v) >= 1024 and _one_text(v):  # a run id, a method: one hash
        return np.full(len(v), pd.util.hash_array(v[:1], categorize=False)[0])
    return pd.util.hash_pandas_object(s, index=False).to_numpy()


def _one_text(v: np.ndarray) -> bool:
    """Every value the same text (compared among the first 512 before all of them; a value
    that does not compare to a bool, such as pd.NA, is not that text)."""
    if not isinstance(v[0], str):
        return False
    try:
        return bool((v[:512] == v[0]).all()) and bool((v == v[0]).all())
    except (TypeError, ValueError):
        return False


def _distinct_text(v: np.ndarray) -> bool:
    """Text only (no nulls, no other types), mostly distinct values among the first 512."""
    head = v[:512]
    if pd.api.types.infer_dtype(head, skipna=False) != "string":
        return False
    return len(set(head.tolist())) > 384 and pd.api.types.infer_dtype(v, skipna=False) == "string"


def _combine(hashes: list[np.ndarray]) -> np.ndarray:
    """One hash per row from the columns' hashes, as pandas combines them (the CPython tuple
    hash recurrence in uint64 arithmetic, wrapping on overflow)."""
    n = len(hashes)
    out = np.full(len(hashes[0]), 0x345678, dtype=np.uint64)
    mult = np.uint64(1000003)
    for i, h in enumerate(hashes):
        out ^= h
        out *= mult
        mult += np.uint64(82520 + 2 * (n - i))
    out += np.uint64(97531)
    return out


def content_hash(df: pd.DataFrame | None, rows: np.ndarray | None = None) -> str:
    """Order-insensitive content hash of a table (rows hashed with
    ``pandas.util.hash_pandas_object``; the sorted row hashes, column names and dtypes go
    through sha256). ``None`` hashes to the hash of the empty string. ``rows`` reuses
    precomputed :func:`row_hashes`."""
    h = hashlib.sha256()
    if df is None:
        return h.hexdigest()[:32]
    cols = sorted(map(str, df.columns))
    h.update(repr([(c, str(df[c].dtype)) for c in cols]).encode())
    if len(df):
        rows = row_hashes(df) if rows is None else rows
        h.update(np.sort(rows).tobytes())
    return h.hexdigest()[:32]


def unit_keys(seed: int, units: pd.Series, waves: pd.Series) -> np.ndarray:
    """Seeded, order-free uint64 keys per (unit, wave), for sampling without replacement."""
    hk = f"{stable_int_hash(('units', seed)):016x}"[:16]
    frame = pd.DataFrame({"u": units.astype(str).to_numpy(), "w": waves.map(key_str).to_numpy()})
    return pd.util.hash_pandas_object(frame, index=False, hash_key=hk).to_numpy()


def package_versions(names: Any, missing: dict[str, str] | None = None) -> dict[str, str]:
    """Python's version and each named package's installed version, for provenance records;
    a package that is not installed reads ``missing[name]``, else "not installed"."""
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = (missing or {}).get(n, "not installed")
    return out
