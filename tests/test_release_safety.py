"""Nothing real is released: no frame unit id, no exact register value, no estimate behind a
suppression, and every released row says which release it belongs to.

The demo world is built once for the session (tests/demo_builds.py, `demo_release`: back-test
off). Its frame is first *marked*: every register value gets a distinct fractional part
(employment 3 becomes 3.41..., turnover 268037 becomes 268037.87...), so each register value occurs
once in the world and nowhere else. An exact register value found anywhere in the release can then only have been
copied from the register: a synthetic count of 3 or an estimate of 268037 no longer matches by
coincidence, which an unmarked integer register would make unavoidable. The same scan run on the
internal synthetic_microdata (which does carry unit ids and register values) proves it finds them.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from demo_builds import writable_copy
from harness import run_dbt
from release_checks import (
    RELEASE_SCHEMA,
    RELEASE_TABLES,
    release_id,
    release_problems,
    schema_tables,
    snapshot,
)

AUX = ("register_employment", "register_turnover")
NUMBER = r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?"


@pytest.fixture(scope="module")
def demo(demo_release):
    """The session's demo build (tests/demo_builds.py: back-test off, register values marked)."""
    b = demo_release
    return b.work, b.data, b.vars, b.res


def leaks(db: Path, frame: Path, schema: str, tables=None) -> dict[tuple[str, str], dict]:
    """(table, column) -> how many distinct values of the column are a frame unit id (`id`), hold a
    frame unit id as a word (`id_token`), equal a register value as a number (`value`) or hold one
    written in the text (`value_text`); only columns with a hit are listed."""
    found = {}
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute(f"create temp table ids as select distinct business_id as v from '{frame}'")
        con.execute(
            "create temp table reg as select distinct cast(v as double) as v from ("
            + " union all ".join(f"select {a} as v from '{frame}'" for a in AUX)
            + ")"
        )
        names = tables or sorted(schema_tables(con, schema))
        for t in names:
            cols = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [schema, t],
            ).fetchall()
            for col, dtype in cols:
                hits = column_leaks(con, f'"{schema}"."{t}"', col, dtype)
                if any(hits.values()):
                    found[(t, col)] = hits
    return found


def column_leaks(con, rel: str, col: str, dtype: str) -> dict[str, int]:
    text = (
        f"""(select distinct cast("{col}" as varchar) as s from {rel} where "{col}" is not null)"""
    )
    q = {
        "id": f"select count(*) from {text} where s in (select v from ids)",
        "id_token": f"""select count(*) from (select distinct unnest(
            regexp_extract_all(s, '[A-Za-z0-9]+')) as w from {text}) where w in (select v from ids)""",
        "value_text": f"""select count(*) from (select distinct try_cast(unnest(
            regexp_extract_all(s, '{NUMBER}')) as double) as x from {text})
            where x in (select v from reg)""",
    }
    if re.match(r"(DOUBLE|FLOAT|REAL|DECIMAL|BIGINT|INTEGER|HUGEINT|SMALLINT|UBIGINT)", dtype):
        q["value"] = f"""select count(*) from (select distinct cast("{col}" as double) as x
            from {rel}) where x in (select v from reg)"""
    return {k: con.execute(sql).fetchone()[0] for k, sql in q.items()}


def band_of(values: np.ndarray, bands: pd.DataFrame) -> list[str]:
    """The label of the band (release_aux_bands rows of one auxiliary) holding each value."""
    edges = np.unique(np.r_[bands.lower_bound.dropna(), bands.upper_bound.dropna()])
    by_lower = {
        (None if pd.isna(lo) else lo): lab for lo, lab in zip(bands.lower_bound, bands.band_label)
    }
    idx = np.searchsorted(edges, values, side="right")
    return [by_lower[None if i == 0 else edges[i - 1]] for i in idx]


# ------------------------------------------------------------------------------ nothing real


def test_the_release_schema_holds_the_release_tables_only(demo):
    _, _, _, res = demo
    with duckdb.connect(str(res.db_path), read_only=True) as con:
        released = schema_tables(con, RELEASE_SCHEMA)
        main = schema_tables(con, "main")
    assert released == {t: "BASE TABLE" for t in RELEASE_TABLES}
    # the real microdata and the internals are built, elsewhere
    assert {"stg_responses", "stg_frame", "synthetic_microdata", "release_gates"} <= set(main)
    assert release_problems(res.db_path) == []


def test_no_frame_unit_id_and_no_register_value_in_any_release_table(demo):
    _, data, _, res = demo
    frame = data / "frame.parquet"
    assert leaks(res.db_path, frame, RELEASE_SCHEMA) == {}
    # the scan finds what is there: the internal synthetic records carry both
    internal = leaks(res.db_path, frame, "main", ["synthetic_microdata"])
    assert internal[("synthetic_microdata", "unit_id")]["id"] > 1000
    for a in AUX:
        assert internal[("synthetic_microdata", a)]["value"] > 1000, internal


def test_records_carry_synthetic_ids_and_banded_auxiliaries(demo):
    _, _, _, res = demo
    rel = res.query(f"select * from {RELEASE_SCHEMA}.synthetic_microdata_release")
    syn = res.query("select * from synthetic_microdata")
    assert len(rel) == len(syn) and rel.synthetic_id.is_unique
    assert rel.synthetic_id.str.fullmatch(r"syn-\d+-\d+").all()
    assert not {"unit_id", "business_id", *AUX} & set(rel.columns)
    bands = res.query("select * from release_aux_bands")
    for a in AUX:
        b = bands[bands.auxiliary == a].sort_values("band_order")
        # coarse: a few bands, each a large share of the register, edges at 2 significant figures
        assert 3 <= len(b) <= 5 and (b.n_frame_units >= 0.1 * b.n_frame_units.sum()).all(), b
        for edge in [*b.lower_bound.dropna(), *b.upper_bound.dropna()]:
            assert float(f"{edge:.2g}") == edge, (a, edge)
        assert set(rel[f"{a}_band"]) <= set(b.band_label)
        # each record sits in its unit's band: per implicate, the same counts per band
        cut = syn[["implicate"]].assign(band=band_of(syn[a].to_numpy(), b))
        assert (
            cut.value_counts()
            .sort_index()
            .equals(
                rel.groupby(["implicate", f"{a}_band"])
                .size()
                .rename_axis(["implicate", "band"])
                .rename("count")
                .sort_index()
            )
        )
    # the outcomes are the synthetic records' own
    outcomes = ["wave", "cell_id", "implicate", "turnover", "employees", "trading_status"]
    assert (
        rel[outcomes]
        .sort_values(outcomes)
        .reset_index(drop=True)
        .equals(syn[outcomes].sort_values(outcomes).reset_index(drop=True))
    )


# ------------------------------------------------------------------------------ hygiene


def test_a_suppressed_row_carries_no_estimate_values(demo):
    _, _, _, res = demo
    est = res.query(f"select * from {RELEASE_SCHEMA}.domain_estimates_release")
    sup = est[est.method == "suppressed"]
    # both kinds of suppression are there, and published rows do carry values
    assert {"suppressed_quality", "suppressed_threshold"} <= set(sup.sdc_status)
    assert est.loc[est.method != "suppressed", "estimate"].notna().all()
    value_cols = [
        c
        for c in est.columns
        if c in ("estimate", "se", "ci_low", "ci_high", "between_var", "within_var")
        or (c.startswith(("direct_", "augmented_")) and est[c].dtype.kind == "f")
    ]
    assert {"direct_estimate", "augmented_estimate", "augmented_se"} <= set(value_cols)
    nonnull = sup[value_cols].notna().sum()
    assert (nonnull == 0).all(), nonnull[nonnull > 0]
    # every numeric column of a suppressed row but its keys, counts and m is null
    numeric = [c for c in est.columns if est[c].dtype.kind in "if"]
    kept = {"wave", "m", *[c for c in numeric if c.startswith("n_")]}
    assert sup[[c for c in numeric if c not in kept]].isna().all().all()


def test_every_released_row_carries_its_release_id(demo):
    _, _, _, res = demo
    rid = release_id(res.db_path)
    assert re.fullmatch(r"[0-9a-f]{16}", rid)
    for t in RELEASE_TABLES:
        ids = res.query(f"select release_id, count(*) as n from {RELEASE_SCHEMA}.{t} group by all")
        assert list(ids.release_id) == [rid], (t, ids)


# ------------------------------------------------------------------------------ the other option


def test_drop_mode_into_a_named_schema_releases_no_auxiliary(demo_release, tmp_path):
    copy = writable_copy(demo_release, tmp_path / "drop")  # the rebuild rewrites release_candidate
    data, vars_, res = copy.data, copy.vars, copy.res
    before = snapshot(res.db_path)
    out = run_dbt(
        copy.work,
        vars={**vars_, "ss_release_auxiliaries": "drop", "ss_release_schema": "public_release"},
        select="release_candidate+",
    )
    assert out.ok, out.output[-3000:]
    assert release_problems(res.db_path, "public_release") == []
    cols = res.query(
        "select column_name from information_schema.columns where table_schema = 'public_release' "
        "and table_name = 'synthetic_microdata_release'"
    ).column_name
    assert not {"unit_id", *AUX, *[f"{a}_band" for a in AUX]} & set(cols)
    assert {"synthetic_id", "region", "size_band", "turnover"} <= set(cols)
    assert leaks(res.db_path, data / "frame.parquet", "public_release") == {}
    assert release_id(res.db_path, "public_release") != release_id(res.db_path)
    assert snapshot(res.db_path) == before  # the default schema's release is untouched
