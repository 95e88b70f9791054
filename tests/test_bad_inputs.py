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

import hashlib
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

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
            cols[c] = pa.array([None if v is None else str(v) for v in values], pa.string())
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
    return run_dbt(work, vars=filled, select=select)


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
