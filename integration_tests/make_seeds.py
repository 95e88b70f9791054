"""Write this project's seeds: a small business survey in its own shape, derived from a demo world.

The consumer's survey names every column differently from the demo (firm_ref, period, zone,
industry, size_class, sales, headcount, status, sought_credit; register columns reg_jobs,
reg_sales) and codes its cells more coarsely (4 zones x 4 industries x 3 size classes), so a
build here proves that the package runs on the input contract alone. Deterministic:

    python integration_tests/make_seeds.py          # rewrites integration_tests/seeds/*.csv
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ZONES = {
    "london": "south", "south_east": "south", "south_west": "south", "east": "south",
    "wales": "west", "west_midlands": "west", "north_west": "west", "northern_ireland": "west",
    "east_midlands": "north", "yorkshire": "north", "north_east": "north", "scotland": "north",
}  # fmt: skip
INDUSTRIES = {
    "manufacturing": "goods", "construction": "goods", "transport": "goods",
    "retail": "trade", "hospitality": "trade", "arts_other": "trade",
    "information": "services", "finance": "services", "professional": "services",
    "real_estate": "services", "admin_support": "public", "health": "public",
}  # fmt: skip
SIZES = {"0-9": "micro", "10-49": "small", "50-249": "medium", "250+": "medium"}
STATUS = {"trading": "active", "paused": "dormant", "closed": "ceased"}
CELL_RENAMES = {"region": "zone", "sector": "industry", "size_band": "size_class"}


def demo_world(out: Path) -> Path:
    """A small demo world (4,000 register units, 2 waves) written to ``out``."""
    script = ROOT / "scripts" / "demo" / "generate_demo.py"
    args = ["--seed", "11", "--frame-size", "4000", "--target-responses-per-wave", "150"]
    subprocess.run(
        [sys.executable, str(script), "--out", str(out), *args, "--waves", "2"], check=True
    )
    return out


def recode_cells(df: pd.DataFrame) -> pd.DataFrame:
    out = df.assign(
        region=df["region"].map(ZONES),
        sector=df["sector"].map(INDUSTRIES),
        size_band=df["size_band"].map(SIZES),
    )
    return out.rename(columns=CELL_RENAMES)


def responses(world: Path) -> pd.DataFrame:
    r = recode_cells(pd.read_parquet(world / "responses.parquet"))
    r = r.assign(trading_status=r["trading_status"].map(STATUS))
    r = r.rename(
        columns={
            "business_id": "firm_ref",
            "wave": "period",
            "design_weight": "sampling_weight",
            "turnover": "sales",
            "employees": "headcount",
            "trading_status": "status",
            "applied_finance": "sought_credit",
        }
    )
    keep = ["firm_ref", "period", "zone", "industry", "size_class", "sampling_weight"]
    r = r[keep + ["status", "sales", "headcount", "sought_credit"]]
    return r.astype({"headcount": "Int64", "sought_credit": "Int64"})


def frame(world: Path) -> pd.DataFrame:
    f = recode_cells(pd.read_parquet(world / "frame.parquet"))
    f = f.rename(
        columns={
            "business_id": "firm_ref",
            "register_employment": "reg_jobs",
            "register_turnover": "reg_sales",
        }
    )
    return f[["firm_ref", "zone", "industry", "size_class", "reg_jobs", "reg_sales"]]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        world = demo_world(Path(tmp) / "world")
        (HERE / "seeds").mkdir(exist_ok=True)
        responses(world).to_csv(HERE / "seeds" / "raw_business_survey.csv", index=False)
        frame(world).to_csv(HERE / "seeds" / "raw_business_register.csv", index=False)


if __name__ == "__main__":
    main()
