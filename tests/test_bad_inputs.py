"""A catalogue of bad inputs, each with its expected verdict, built through the staging layer.

Every case ends in one of three verdicts, and never in a raw traceback or engine error:
- quarantined: the row is in quarantined_responses with the named problem and a reason naming the
  column and value, and staged + distinct quarantined rows = input rows;
- staged: the row is valid (an accepted spelling, a boundary value) and is in stg_responses;
- stop: the run stops at staging with one surveysynth message naming the var or column and the fix.

Row-level cases are planted together, one row each, in a few files (one dbt run per file); file and
structural cases run one at a time. Runs with identical vars share a target folder, so dbt parses
the project once per set of vars and most runs cost about three seconds.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from harness import DbtResult, run_dbt

STAGING = "+stg_responses +quarantined_responses"
# Engine and Python failure text that must never reach the user: every stop is a surveysynth message.
RAW_ERRORS = (
    "Traceback",
    "IO Error",
    "Parser Error",
    "Binder Error",
    "Conversion Error",
    "Invalid Input Error",
    "Catalog Error",
    "Out of Range Error",
    "Database Error",
    "Runtime Error",
    "Python model failed",
)
REGIONS, SECTORS, SIZES = ["north", "south", "east"], ["farming", "retail"], ["0-9", "250+"]
OUTCOMES = ["trading_status", "turnover_change", "turnover", "employees", "cash_reserves"]
NUMERIC = {"design_weight", "turnover", "employees"}


# ------------------------------------------------------------------------------------ the survey
def frame(units_per_cell: int = 8, planted: int = 0) -> pd.DataFrame:
    """12 cells x units_per_cell units, plus `planted` units P000.. in the first cell."""
    rows = []
    for region in REGIONS:
        for sector in SECTORS:
            for size in SIZES:
                for _ in range(units_per_cell):
                    rows.append((f"U{len(rows):03d}", region, sector, size))
    rows += [(f"P{i:03d}", "north", "farming", "0-9") for i in range(planted)]
    f = pd.DataFrame(rows, columns=["business_id", "region", "sector", "size_band"])
    f["register_employment"] = [float(i % 7 + 1) for i in range(len(f))]
    f["register_turnover"] = [float(100 + i) for i in range(len(f))]
    return f


def responses(fr: pd.DataFrame, waves=(1, 2)) -> pd.DataFrame:
    """Every other U unit answers in each wave, with varied, valid answers."""
    units = fr[fr.business_id.str.startswith("U")].iloc[::2]
    out = []
    for wave in waves:
        for i, u in enumerate(units.itertuples()):
            out.append(clean_row(u.business_id, u.region, u.sector, u.size_band, wave, i))
    return pd.DataFrame(out)


def clean_row(uid, region, sector, size, wave, i: int = 0) -> dict:
    return {
        "business_id": uid,
        "wave": wave,
        "region": region,
        "sector": sector,
        "size_band": size,
        "design_weight": 2.0 + i % 3,
        "trading_status": ["trading", "paused", "closed"][i % 3],
        "turnover_change": ["decreased", "stayed_same", "increased"][i % 3],
        "turnover": 10.0 + i,
        "employees": float(i % 5),
        "cash_reserves": ["none", "under_1_month"][i % 2],
        "applied_finance": i % 2,
    }


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Parquet with exact types: numbers as doubles keeping NaN apart from null (None), the binary
    as int64, everything else as text."""
    cols = {}
    for c in df.columns:
        values = [None if v is None or v is pd.NA else v for v in df[c].tolist()]
        if c in NUMERIC:
            cols[c] = pa.array([None if v is None else float(v) for v in values], pa.float64())
        elif c in ("wave", "applied_finance"):
            cols[c] = pa.array([None if v is None else int(v) for v in values], pa.int64())
        else:
            text = [
                None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values
            ]
            cols[c] = pa.array([None if v is None else str(v) for v in text], pa.string())
    pq.write_table(pa.table(cols), path)


# ------------------------------------------------------------------------------------ running dbt
def stage(root: Path, files: dict, extra: dict | None = None, select: str = STAGING) -> DbtResult:
    """Write `files` ({name: DataFrame | bytes | callable(path)}) and run the staging build.

    Runs whose vars are identical share a work folder, so dbt's partial parse skips re-parsing."""
    vars_ = {
        "ss_responses": "file:{in}/responses.parquet",
        "ss_frame": "file:{in}/frame.parquet",
        **(extra or {}),
    }
    key = hashlib.sha1(json.dumps([vars_, select], sort_keys=True).encode()).hexdigest()[:10]
    work = root / key
    inp = work / "in"
    shutil.rmtree(inp, ignore_errors=True)
    inp.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, pd.DataFrame):
            write_parquet(content, inp / name)
        elif isinstance(content, bytes):
            (inp / name).write_bytes(content)
        elif content is not None:
            content(inp / name)
    (work / "warehouse.duckdb").unlink(missing_ok=True)
    filled = json.loads(json.dumps(vars_).replace("{in}", str(inp)))
    # cautious: only tests whose parents are all selected (not gates of later layers)
    return run_dbt(
        work, vars=filled, select=select, extra_args=["--indirect-selection", "cautious"]
    )


def assert_no_raw_errors(res: DbtResult) -> None:
    hits = [e for e in RAW_ERRORS if e in res.output]
    assert not hits, f"raw error text {hits} in the output:\n{res.output[-4000:]}"


def assert_stops(res: DbtResult, *texts: str) -> None:
    """The run failed with one surveysynth message that contains every text."""
    assert not res.ok, res.output[-3000:]
    assert_no_raw_errors(res)
    assert "surveysynth" in res.output, res.output[-3000:]
    for t in texts:
        assert t in res.output, f"'{t}' not in the output:\n{res.output[-3000:]}"
    # one node failed (or none: a malformed var stops the parse before any node runs)
    results = res.target_path / "run_results.json"
    if results.exists():
        errors = [r for r in res.run_results()["results"] if r["status"] == "error"]
        assert len(errors) <= 1, [e["unique_id"] for e in errors]


def staged_and_quarantined(res: DbtResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        res.query("select * from stg_responses"),
        res.query("select * from quarantined_responses order by _row_id, problem"),
    )


def assert_conserved(res: DbtResult, n_input: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    assert res.ok, res.output[-4000:]
    assert_no_raw_errors(res)
    staged, q = staged_and_quarantined(res)
    assert len(staged) + q["_row_id"].nunique() == n_input
    assert not set(staged["_row_id"]) & set(q["_row_id"])
    return staged, q


# ------------------------------------------------------------------------------------ row cases
@dataclass
class RowCase:
    """One planted row: `changes` applied to a clean row of unit P<index> (or to its own unit id),
    and the verdict: `problem` (quarantined, reason containing `text`) or staged (problem None,
    with `staged` column values)."""

    id: str
    changes: dict
    problem: str | None = None
    text: str = ""
    staged: dict = field(default_factory=dict)
    copies: int = 1


HUGE_TEXT = "x" * 1_000_000
TYPED_ROWS = [
    RowCase(
        "turnover_inf",
        {"turnover": math.inf},
        "not_finite",
        "turnover = inf is not a finite number",
    ),
    RowCase(
        "turnover_minus_inf",
        {"turnover": -math.inf},
        "not_finite",
        "turnover = -inf is not a finite",
    ),
    RowCase(
        "turnover_nan",
        {"turnover": math.nan},
        "not_finite",
        "turnover = nan is not a finite number",
    ),
    RowCase(
        "turnover_1e300", {"turnover": 1e300}, "not_finite", "is beyond ss_max_abs_value = 1e+15"
    ),
    RowCase(
        "turnover_just_beyond_bound", {"turnover": 2e15}, "not_finite", "beyond ss_max_abs_value"
    ),
    RowCase("turnover_minus_1e300", {"turnover": -1e300}, "not_finite", "beyond ss_max_abs_value"),
    RowCase("turnover_at_bound", {"turnover": 1e15}, staged={"turnover": 1e15}),
    RowCase("turnover_denormal", {"turnover": 5e-324}, staged={"turnover": 5e-324}),
    RowCase("turnover_negative_zero", {"turnover": -0.0}, staged={"turnover": 0.0}),
    RowCase(
        "turnover_below_min",
        {"turnover": -5.0},
        "out_of_range",
        "turnover = -5.0 is below its minimum 0",
    ),
    RowCase(
        "employees_nan", {"employees": math.nan}, "not_finite", "employees = nan is not a finite"
    ),
    RowCase("employees_1e300", {"employees": 1e300}, "not_finite", "employees = 1e+300 is beyond"),
    RowCase(
        "employees_fraction",
        {"employees": 2.5},
        "out_of_range",
        "employees = 2.5 is not a whole number",
    ),
    RowCase(
        "weight_inf",
        {"design_weight": math.inf},
        "bad_weight",
        "design weight inf is not a finite number",
    ),
    RowCase(
        "weight_nan", {"design_weight": math.nan}, "bad_weight", "design weight nan is not a finite"
    ),
    RowCase("weight_1e300", {"design_weight": 1e300}, "bad_weight", "is beyond ss_max_abs_value"),
    RowCase(
        "weight_negative",
        {"design_weight": -1.5},
        "bad_weight",
        "design weight -1.5 is not positive",
    ),
    RowCase(
        "weight_missing",
        {"design_weight": None},
        "bad_weight",
        "design weight (design_weight) is missing",
    ),
    RowCase(
        "level_sql_injection",
        {"trading_status": "x'); drop table stg_responses; --"},
        "unknown_level",
        "trading_status = 'x'); drop table stg_responses; --' is not one of its levels",
    ),
    RowCase(
        "level_apostrophe",
        {"trading_status": "don't know"},
        "unknown_level",
        "'don't know' is not one",
    ),
    RowCase(
        "level_other_case",
        {"trading_status": "Trading"},
        "unknown_level",
        "'Trading' is not one of",
    ),
    RowCase(
        "level_trailing_space", {"trading_status": "trading "}, "unknown_level", "'trading ' is not"
    ),
    RowCase(
        "level_unicode", {"trading_status": "trädïng 🚀"}, "unknown_level", "'trädïng 🚀' is not"
    ),
    RowCase(
        "level_newline", {"turnover_change": "up\ndown"}, "unknown_level", "'up\ndown' is not one"
    ),
    RowCase(
        "level_huge_text", {"cash_reserves": HUGE_TEXT}, "unknown_level", "cash_reserves = 'xxxxx"
    ),
    RowCase(
        "binary_coded_2",
        {"applied_finance": 2},
        "unknown_level",
        "applied_finance = '2' is not one of its levels (0, 1)",
    ),
    RowCase(
        "region_unknown",
        {"region": "atlantis"},
        "bad_cell_value",
        "region = 'atlantis' is not a value",
    ),
    RowCase(
        "region_missing", {"region": None}, "bad_cell_value", "region (cell dimension) is missing"
    ),
    RowCase(
        "unit_hostile_id",
        {"business_id": '"; drop table x; --'},
        "unit_not_on_frame",
        'unit "; drop table x; -- is not on',
    ),
    RowCase("unit_huge_id", {"business_id": "U" * 10_000}, "unit_not_on_frame", "unit UUU"),
    RowCase(
        "unit_id_missing",
        {"business_id": None},
        "missing_unit_id",
        "unit id (business_id) is missing",
    ),
    RowCase("wave_missing", {"wave": None}, "missing_wave", "wave (wave) is missing"),
    RowCase(
        "duplicate_identical_rows", {}, "duplicate_unit_wave", "appears 2 times in wave 1", copies=2
    ),
    RowCase(
        "all_answers_empty",
        {o: None for o in [*OUTCOMES, "applied_finance"]},
        staged={"turnover": None},
    ),
    RowCase(
        "two_problems_one_row",
        {"turnover": math.inf, "trading_status": "gone"},
        "not_finite",
        "turnover = inf",
    ),
]

CSV_ROWS = [
    RowCase("text_inf", {"turnover": "inf"}, "not_finite", "turnover = inf is not a finite number"),
    RowCase("text_nan", {"turnover": "NaN"}, "not_finite", "turnover = NaN is not a finite number"),
    RowCase(
        "text_overflow",
        {"turnover": "1e400"},
        "not_finite",
        "turnover = 1e400 is not a finite number",
    ),
    RowCase(
        "text_minus_infinity",
        {"turnover": "-Infinity"},
        "not_finite",
        "turnover = -Infinity is not",
    ),
    RowCase(
        "text_decimal_comma",
        {"turnover": "1,5"},
        "out_of_range",
        "turnover = '1,5' is not a number",
    ),
    RowCase("text_hex", {"turnover": "0x1A"}, "out_of_range", "turnover = '0x1A' is not a number"),
    RowCase(
        "text_number_and_unit",
        {"turnover": "12 GBP"},
        "out_of_range",
        "turnover = '12 GBP' is not a number",
    ),
    RowCase("text_padded_number", {"turnover": " 7 "}, staged={"turnover": 7.0}),
    RowCase("text_count_as_decimal", {"employees": "3.0"}, staged={"employees": 3}),
    RowCase("binary_yes", {"applied_finance": "yes"}, staged={"applied_finance": 1}),
    RowCase("binary_false", {"applied_finance": "FALSE"}, staged={"applied_finance": 0}),
    RowCase(
        "binary_maybe",
        {"applied_finance": "maybe"},
        "unknown_level",
        "applied_finance = 'maybe' is not",
    ),
    RowCase(
        "weight_text", {"design_weight": "two"}, "bad_weight", "design weight 'two' is not a number"
    ),
    RowCase(
        "weight_empty_field",
        {"design_weight": ""},
        "bad_weight",
        "design weight (design_weight) is missing",
    ),
    RowCase(
        "level_quoted_comma",
        {"trading_status": "closed, for now"},
        "unknown_level",
        "'closed, for now' is not",
    ),
]


def planted(cases: list[RowCase]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The clean survey plus one row per case (copies for duplicates); returns frame, responses
    and {case id: unit id the row carries}."""
    n = len(cases)
    fr = frame(planted=n)
    rows, ids = [], {}
    for i, case in enumerate(cases):
        row = {**clean_row(f"P{i:03d}", "north", "farming", "0-9", 1, i), **case.changes}
        ids[case.id] = row["business_id"]
        rows += [row] * case.copies
    clean = responses(fr).to_dict("records")
    return fr, pd.DataFrame(clean + rows, dtype=object), ids


def check_row_case(case: RowCase, uid, staged: pd.DataFrame, q: pd.DataFrame) -> None:
    mine_q = q[q["unit_id"].isna()] if uid is None else q[q["unit_id"] == uid]
    mine_s = staged[staged["unit_id"] == uid]
    if case.problem is None:
        assert mine_q.empty, mine_q[["problem", "reason"]].to_dict("records")
        assert len(mine_s) == 1
        for col, value in case.staged.items():
            got = mine_s.iloc[0][col]
            assert (value is None and pd.isna(got)) or got == value, (col, got)
        return
    assert mine_s.empty
    hit = mine_q[
        (mine_q["problem"] == case.problem) & mine_q["reason"].str.contains(case.text, regex=False)
    ]
    assert len(hit) == case.copies, (
        case.problem,
        case.text,
        mine_q[["problem", "reason"]].to_dict("records"),
    )
    assert (mine_q["reason"].str.len() <= 200).all()  # huge values are cut in the reason


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_inputs")


@pytest.fixture(scope="module")
def typed_batch(root):
    fr, resp, ids = planted(TYPED_ROWS)
    res = stage(
        root, {"responses.parquet": resp, "frame.parquet": fr}, {"ss_max_quarantine_share": 0.5}
    )
    return res, len(resp), ids


@pytest.fixture(scope="module")
def csv_batch(root):
    fr, resp, ids = planted(CSV_ROWS)
    res = stage(
        root,
        {"responses.csv": lambda p: resp.to_csv(p, index=False), "frame.parquet": fr},
        {"ss_responses": "file:{in}/responses.csv", "ss_max_quarantine_share": 0.5},
    )
    return res, len(resp), ids


@pytest.mark.parametrize("case", TYPED_ROWS, ids=lambda c: c.id)
def test_typed_parquet_row(typed_batch, case):
    res, n_input, ids = typed_batch
    staged, q = assert_conserved(res, n_input)
    check_row_case(case, ids[case.id], staged, q)


@pytest.mark.parametrize("case", CSV_ROWS, ids=lambda c: c.id)
def test_csv_text_row(csv_batch, case):
    res, n_input, ids = csv_batch
    staged, q = assert_conserved(res, n_input)
    check_row_case(case, ids[case.id], staged, q)


# ------------------------------------------------------------------------------------ file cases
def as_parquet(df: pd.DataFrame):
    """A writer keeping pandas' own column types (ints, dates, booleans, decimals)."""
    return lambda p: df.to_parquet(p, index=False)


def as_csv(df: pd.DataFrame, **kw):
    return lambda p: df.to_csv(p, index=False, **kw)


def survey(**frame_kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    fr = frame(**frame_kw)
    return fr, responses(fr)


def files(resp=None, fr=None, **more) -> dict:
    """The default survey's files, with any replaced (None keeps the default)."""
    f0, r0 = survey()
    return {
        "responses.parquet": r0 if resp is None else resp,
        "frame.parquet": f0 if fr is None else fr,
        **more,
    }


def changed(df: pd.DataFrame, **cols) -> pd.DataFrame:
    out = df.copy()
    for c, v in cols.items():
        out[c] = v(out) if callable(v) else v
    return out


def one_cell() -> dict:
    fr = frame()
    fr[["region", "sector", "size_band"]] = ["north", "farming", "0-9"]
    return files(responses(fr), fr)


def ids_typed_apart() -> dict:
    fr, resp = survey()
    fr["business_id"] = range(len(fr))
    resp["business_id"] = resp["business_id"].str[1:].astype(float)  # 0.0, 2.0, ... vs 0, 2, ...
    return {"responses.parquet": as_parquet(resp), "frame.parquet": as_parquet(fr)}


def csv_text(resp: pd.DataFrame, line_edit=None, encoding="utf-8") -> bytes:
    text = resp.to_csv(index=False)
    return (line_edit(text) if line_edit else text).encode(encoding)


def ragged(text: str) -> str:
    lines = text.splitlines()
    lines[5] += ",surplus"
    return "\n".join(lines) + "\n"


def text_waves() -> pd.DataFrame:
    return changed(survey()[1], wave=lambda d: "W" + d["wave"].astype(str))


def truth(wave_values, drop: str | None = None) -> pd.DataFrame:
    t = pd.DataFrame(
        {
            "region": "north",
            "sector": "farming",
            "size_band": "0-9",
            "wave": wave_values,
            "indicator": "turnover",
            "true_value": 1.0,
        }
    )
    return t.drop(columns=[drop]) if drop else t


def totals(counts=None, repeat_first=False) -> pd.DataFrame:
    f = frame()
    t = f.groupby(["region", "sector", "size_band"]).size().rename("n_population").reset_index()
    if counts is not None:
        t["n_population"] = counts
    return pd.concat([t, t.iloc[:1]]) if repeat_first else t


TOTALS_VARS = {
    "ss_frame": None,
    "ss_frame_auxiliaries": [],
    "ss_population_totals": "file:{in}/totals.parquet",
    "ss_ratio_estimators": {},
}
CSV_VARS = {"ss_responses": "file:{in}/responses.csv"}
NO_SDC = {"ss_sdc_tables": []}


_F, _R = survey()


@dataclass
class FileCase:
    """A whole input (files and vars) and its verdict: the texts the stop message must contain,
    or None when every row must be staged."""

    id: str
    make: Callable[[], dict]
    stops: tuple[str, ...] | None
    extra: dict = field(default_factory=dict)
    rows: int = 0  # input rows of a staged case (0: the default survey's)

    def __post_init__(self):
        self.rows = self.rows or len(_R)


STOPS = [
    # empty and degenerate inputs
    FileCase(
        "responses_no_rows", lambda: files(_R.iloc[:0]), ("var 'ss_responses'", "has no rows")
    ),
    FileCase(
        "frame_no_rows", lambda: files(fr=_F.iloc[:0]), ("the frame (var 'ss_frame'", "has no rows")
    ),
    FileCase(
        "single_cell", one_cell, ("has a single cell of ss_cell_dims", "add a cell dimension")
    ),
    FileCase(
        "outcome_without_answers",
        lambda: files(changed(_R, cash_reserves=None)),
        ("outcome 'cash_reserves' (ss_outcomes) has no answers",),
    ),
    FileCase(
        "binary_coded_1_2",
        lambda: files(changed(_R, applied_finance=lambda d: d.applied_finance + 1)),
        (
            "applied_finance = '2' is not one of its levels (0, 1)",
            "Recode column 'applied_finance' to 0/1",
        ),
    ),
    FileCase(
        "levels_in_capitals",
        lambda: files(changed(_R, trading_status=lambda d: d.trading_status.str.upper())),
        (
            "trading_status = 'TRADING'",
            "List the codes the data use in ss_outcomes.trading_status.levels",
        ),
    ),
    FileCase(
        "cells_coded_otherwise",
        lambda: files(changed(_R, region=lambda d: d.region.str[0].str.upper())),
        ("region = 'N' is not a value of the population", "Code column 'region' (ss_cell_dims)"),
    ),
    FileCase(
        "ids_typed_apart",
        ids_typed_apart,
        ("unit 0.0 is not on the frame", "The unit ids of ss_responses (column 'business_id')"),
    ),
    FileCase(
        "wave_var_names_a_constant",
        lambda: files(changed(_R, survey_name="bics")),
        ("appears 2 times in wave bics", "Check that var 'ss_wave' (survey_name)"),
        {"ss_wave": "survey_name"},
    ),
    FileCase(
        "weights_not_numbers",
        lambda: files(as_parquet(changed(_R, design_weight="n/a"))),
        (
            "design weight 'n/a' is not a number",
            "Fix column 'design_weight' (var 'ss_design_weight')",
        ),
    ),
    # files that are missing, empty or not what they claim
    FileCase(
        "responses_file_missing",
        lambda: files() | {"responses.parquet": None},
        ("var 'ss_responses'", "no such file"),
    ),
    FileCase(
        "frame_file_missing",
        lambda: files() | {"frame.parquet": None},
        ("var 'ss_frame'", "no such file"),
    ),
    FileCase(
        "parquet_zero_bytes",
        lambda: files(b""),
        ("var 'ss_responses'", "the file is empty (0 bytes)"),
    ),
    FileCase(
        "csv_named_parquet",
        lambda: files(csv_text(_R)),
        ("var 'ss_responses'", "is not a Parquet file"),
    ),
    FileCase(
        "csv_latin1",
        lambda: files() | {"responses.csv": csv_text(changed(_R, note="café"), encoding="latin-1")},
        ("var 'ss_responses'", "is not UTF-8 text", "'ss_csv_encoding'"),
        CSV_VARS,
    ),
    FileCase(
        "csv_utf16",
        lambda: files() | {"responses.csv": csv_text(_R, encoding="utf-16")},
        ("is not UTF-8 text",),
        CSV_VARS,
    ),
    FileCase(
        "csv_ragged_line",
        lambda: files() | {"responses.csv": csv_text(_R, ragged)},
        ("not found in ss_responses", "read as a single column: check its delimiter"),
        CSV_VARS,
    ),
    FileCase(
        "csv_header_only",
        lambda: files() | {"responses.csv": csv_text(_R.iloc[:0])},
        ("var 'ss_responses'", "has no rows"),
        CSV_VARS,
    ),
    FileCase(
        "csv_zero_bytes", lambda: files() | {"responses.csv": b""}, ("the file is empty",), CSV_VARS
    ),
    FileCase(
        "relation_missing",
        files,
        ("var 'ss_responses' = 'main.no_such_table': no such table",),
        {"ss_responses": "main.no_such_table"},
    ),
    # the back-test truth table
    FileCase(
        "truth_wave_type_differs",
        lambda: files(as_parquet(text_waves())) | {"truth.parquet": truth([1, 2])},
        ("the waves of var 'ss_backtest_truth' (column 'wave', BIGINT)", "VARCHAR"),
        {"ss_backtest_truth": "file:{in}/truth.parquet"},
    ),
    FileCase(
        "truth_lacks_columns",
        lambda: files() | {"truth.parquet": truth([1, 2], drop="true_value")},
        ("var 'ss_backtest_truth'", "lacks column(s) true_value"),
        {"ss_backtest_truth": "file:{in}/truth.parquet"},
    ),
    FileCase(
        "truth_file_missing",
        files,
        ("var 'ss_backtest_truth'", "no such file"),
        {"ss_backtest_truth": "file:{in}/truth.parquet"},
    ),
    # the frame and the population totals
    FileCase(
        "frame_auxiliary_infinite",
        lambda: files(
            fr=changed(
                _F, register_turnover=lambda d: d.register_turnover.where(d.index != 3, np.inf)
            )
        ),
        ("auxiliary 'register_turnover' (ss_frame_auxiliaries) is not a finite number",),
    ),
    FileCase(
        "frame_duplicate_units",
        lambda: files(fr=pd.concat([_F, _F.iloc[:2]])),
        ("lists 2 unit id(s) of column 'business_id' more than once",),
    ),
    FileCase(
        "frame_unit_without_cell",
        lambda: files(fr=changed(_F, region=lambda d: d.region.where(d.index != 0))),
        ("has 1 row(s) with a missing unit id (business_id) or cell dimension",),
    ),
    FileCase(
        "totals_cell_twice",
        lambda: files() | {"totals.parquet": as_parquet(totals(repeat_first=True))},
        (
            "var 'ss_population_totals'",
            "lists 1 cell(s) of ss_cell_dims (region, sector, size_band) more than once",
        ),
        TOTALS_VARS,
    ),
    FileCase(
        "totals_negative_count",
        lambda: files() | {"totals.parquet": as_parquet(totals(counts=-1))},
        ("whose count (column 'n_population', var 'ss_population_count') is missing or negative",),
        TOTALS_VARS,
    ),
    FileCase(
        "totals_no_rows",
        lambda: files() | {"totals.parquet": as_parquet(totals().iloc[:0])},
        ("the population (var 'ss_population_totals'", "has no rows"),
        TOTALS_VARS,
    ),
    # malformed vars
    FileCase(
        "var_column_twice",
        files,
        ("column 'region' is named twice, by var 'ss_cell_dims' and by var 'ss_outcomes'",),
        {"ss_outcomes": {"region": {"type": "categorical", "levels": ["north", "south"]}}},
    ),
    FileCase(
        "var_internal_column_name",
        lambda: files(changed(_R, cell_id="x"), changed(_F, cell_id="x")),
        ("var 'ss_cell_dims': column name 'cell_id' is one the models use",),
        {"ss_cell_dims": ["region", "cell_id"], **NO_SDC},
    ),
    FileCase(
        "var_level_twice",
        files,
        ("'levels' lists a value twice",),
        {
            "ss_outcomes": {
                "trading_status": {
                    "type": "categorical",
                    "levels": ["trading", "trading", "closed"],
                }
            }
        },
    ),
    FileCase(
        "var_max_abs_value_negative",
        files,
        ("var 'ss_max_abs_value' must be a number in (0, 1e18]",),
        {"ss_max_abs_value": -1},
    ),
    FileCase(
        "var_csv_encoding_unknown",
        files,
        ("var 'ss_csv_encoding' must be one of",),
        {"ss_csv_encoding": "ebcdic"},
    ),
    FileCase(
        "var_names_absent_column_with_space",
        files,
        ("column 'size band' (set by var 'ss_cell_dims') not found in ss_frame",),
        {"ss_cell_dims": ["region", "size band"], **NO_SDC},
    ),
]


def _wide() -> dict:
    extra = pd.DataFrame({f"extra_{i}": 0.5 for i in range(2000)}, index=_R.index)
    return files(as_parquet(pd.concat([_R, extra], axis=1)))


def _large() -> dict:
    fr, resp = survey(units_per_cell=2000)
    return files(as_parquet(resp), as_parquet(fr))


def _same_int_ids() -> dict:
    fr, resp = survey()
    fr["business_id"] = fr["business_id"].str[1:].astype(int)
    resp["business_id"] = resp["business_id"].str[1:].astype(int)
    return files(as_parquet(resp), as_parquet(fr))


def _decimal_weights(p: Path) -> None:
    t = pa.Table.from_pandas(_R, preserve_index=False)
    i = t.schema.get_field_index("design_weight")
    w = pa.array([decimal.Decimal(f"{x:.10f}") for x in _R["design_weight"]], pa.decimal128(38, 10))
    pq.write_table(t.set_column(i, "design_weight", w), p)


STAGED = [
    FileCase(
        "csv_with_bom",
        lambda: files() | {"responses.csv": csv_text(_R, encoding="utf-8-sig")},
        None,
        CSV_VARS,
    ),
    FileCase(
        "csv_semicolons", lambda: files() | {"responses.csv": as_csv(_R, sep=";")}, None, CSV_VARS
    ),
    FileCase(
        "csv_crlf_lines",
        lambda: files() | {"responses.csv": as_csv(_R, lineterminator="\r\n")},
        None,
        CSV_VARS,
    ),
    FileCase(
        "tsv_tabs",
        lambda: files() | {"responses.tsv": as_csv(_R, sep="\t")},
        None,
        {"ss_responses": "file:{in}/responses.tsv"},
    ),
    FileCase(
        "csv_latin1_declared",
        lambda: files() | {"responses.csv": csv_text(changed(_R, note="café"), encoding="latin-1")},
        None,
        {**CSV_VARS, "ss_csv_encoding": "latin-1"},
    ),
    FileCase(
        "csv_duplicate_header",
        lambda: (
            files()
            | {
                "responses.csv": csv_text(
                    changed(_R, extra=1), lambda t: t.replace(",extra\n", ",wave\n", 1)
                )
            }
        ),
        None,
        CSV_VARS,
    ),
    FileCase("wide_file_2000_columns", _wide, None),
    FileCase("large_file_24000_rows", _large, None, rows=24000),
    FileCase(
        "waves_as_dates",
        lambda: files(
            as_parquet(
                changed(
                    _R,
                    wave=lambda d: pd.to_datetime("2024-01-01") + pd.to_timedelta(d.wave * 30, "D"),
                )
            )
        ),
        None,
    ),
    FileCase(
        "binary_as_booleans",
        lambda: files(as_parquet(changed(_R, applied_finance=lambda d: d.applied_finance == 1))),
        None,
    ),
    FileCase(
        "numbers_as_text",
        lambda: files(as_parquet(changed(_R, turnover=lambda d: d.turnover.map(str)))),
        None,
    ),
    FileCase("ids_as_integers", _same_int_ids, None),
    FileCase(
        "weights_as_decimals", lambda: files() | {"responses.parquet": _decimal_weights}, None
    ),
    FileCase(
        "column_names_in_capitals", lambda: files(as_parquet(_R.rename(columns=str.upper))), None
    ),
]


@pytest.mark.parametrize("case", STOPS, ids=lambda c: c.id)
def test_input_stops_with_named_message(root, case):
    res = stage(root, case.make(), case.extra)
    assert_stops(res, *case.stops)


@pytest.mark.parametrize("case", STAGED, ids=lambda c: c.id)
def test_input_is_staged_whole(root, case):
    made = case.make()
    res = stage(root, made, case.extra)
    staged, q = assert_conserved(res, case.rows)
    assert q.empty, q["reason"].head().tolist()
    assert staged["applied_finance"].isin([0, 1]).all()


# ------------------------------------------------------------------------------------ names
HOSTILE = {
    "business_id": "business id",
    "wave": "order",
    "sector": "sector-code",
    "size_band": "size band",
    "trading_status": "trading-status",
    "turnover": "turnover £",
    "cash_reserves": 'cash "reserves"',
}


def test_hostile_column_names_and_level_text(root):
    """Columns named with a space, a hyphen, a reserved word, a pound sign and a double quote, a
    level with an apostrophe: staged under those names; a bad value is quarantined naming them."""
    resp = _R.copy()
    resp["trading_status"] = resp["trading_status"].replace({"paused": "don't know"})
    resp.loc[0, "turnover"] = np.inf
    resp.loc[1, "trading_status"] = "it's over"
    fr = _F.rename(columns=HOSTILE)
    outcomes = {
        "trading-status": {"type": "categorical", "levels": ["trading", "don't know", "closed"]},
        "turnover £": {"type": "continuous", "min": 0},
        'cash "reserves"': {"type": "ordinal", "levels": ["none", "under_1_month"]},
    }
    extra = {
        "ss_unit_id": "business id",
        "ss_frame_unit_id": "business id",
        "ss_wave": "order",
        "ss_cell_dims": ["region", "sector-code", "size band"],
        "ss_outcomes": outcomes,
        **NO_SDC,
    }
    made = {"responses.parquet": as_parquet(resp.rename(columns=HOSTILE)), "frame.parquet": fr}
    res = stage(root, made, extra, select=f"{STAGING} cell_support")
    staged, q = assert_conserved(res, len(resp))
    assert sorted(q["reason"]) == [
        "trading-status = 'it's over' is not one of its levels (trading, don't know, closed)",
        "turnover £ = inf is not a finite number",
    ]
    assert {"sector-code", "size band", "turnover £", 'cash "reserves"'} <= set(staged.columns)
    assert "don't know" in set(staged["trading-status"])
    support = res.query("select * from cell_support")
    assert len(support) == 12 * 2 and "size band" in support.columns
