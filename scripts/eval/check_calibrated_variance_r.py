"""Check direct_estimates' calibration-aware standard errors against R's `survey` package.

Reads a built warehouse (the demo's, by default), writes one wave's respondents with their base
weights, strata and the calibration targets to CSV, and has R build the same design
(svydesign(ids = ~1, strata = ~cell, fpc = ~N_h, weights = ~base weight)), rake it to the same count
margins (calibrate(..., calfun = "raking")) and estimate the means and totals of employees and the
share of closed businesses by region (svyby, lonely strata 'adjust'). Prints the SQL / R ratio of
the SEs and of the estimates, and exits non-zero when an SE differs by more than --rtol.

Needs Rscript with the survey package (Debian: apt-get install r-base-core r-cran-survey
r-cran-mass). The demo's default margins only (one per cell dimension, no calibration totals).

    .venv/bin/python scripts/eval/check_calibrated_variance_r.py [--db target/surveysynth.duckdb]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]

R_SCRIPT = r"""
suppressMessages(library(survey)); options(survey.lonely.psu = "adjust")
args <- commandArgs(trailingOnly = TRUE); dir <- args[1]
u <- read.csv(file.path(dir, "units.csv"), stringsAsFactors = TRUE)
m <- read.csv(file.path(dir, "margins.csv"), stringsAsFactors = FALSE)
des <- svydesign(ids = ~1, strata = ~stratum, fpc = ~N_h, weights = ~d, data = u)
pop <- function(id) { x <- m[m$margin_id == id, ]; setNames(x$target, x$category) }
tot <- c(sum(pop("region")), pop("region")[levels(u$region)][-1],
         pop("sector")[levels(u$sector)][-1], pop("size_band")[levels(u$size_band)][-1])
names(tot) <- c("(Intercept)", paste0("region", levels(u$region)[-1]),
                paste0("sector", levels(u$sector)[-1]), paste0("size_band", levels(u$size_band)[-1]))
cal <- calibrate(des, ~region + sector + size_band, population = tot, calfun = "raking",
                 epsilon = 1e-10, maxit = 200)
a <- svyby(~employees, ~region, cal, svymean, na.rm = TRUE)
b <- svyby(~employees, ~region, cal, svytotal, na.rm = TRUE)
c <- svyby(~closed, ~region, cal, svymean, na.rm = TRUE)
out <- rbind(
  data.frame(region = a$region, indicator = "employees", measure = "mean", r_est = a$employees, r_se = SE(a)),
  data.frame(region = b$region, indicator = "employees", measure = "total", r_est = b$employees, r_se = SE(b)),
  data.frame(region = c$region, indicator = "trading_status=closed", measure = "share", r_est = c$closed, r_se = SE(c)))
write.csv(out, file.path(dir, "r.csv"), row.names = FALSE)
"""


def export(db: Path, wave: int, out: Path) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        u = con.sql(
            "select r.region, r.sector, r.size_band, r.employees, r.trading_status, "
            "c.base_weight as d, p.n_population as N_h from stg_responses r "
            "join calibrated_weights c using (_row_id) "
            "join population_cells p using (region, sector, size_band) "
            f"where r.wave = {wave}"
        ).df()
        m = con.sql(
            f"select margin_id, category, target from calibration_margins where wave = {wave}"
        ).df()
        sql = con.sql(
            "select region, indicator, measure, estimate, se from direct_estimates "
            f"where wave = {wave} and domain_level = 'region' and ((indicator = 'employees' "
            "and measure in ('mean', 'total')) or (indicator = 'trading_status=closed' "
            "and measure = 'share'))"
        ).df()
    u["stratum"] = u.region + "|" + u.sector + "|" + u.size_band
    u["closed"] = (u.trading_status == "closed").astype(float).where(u.trading_status.notna())
    u.drop(columns="trading_status").to_csv(out / "units.csv", index=False)
    m.to_csv(out / "margins.csv", index=False)
    return sql


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=str(ROOT / "target" / "surveysynth.duckdb"))
    ap.add_argument("--wave", type=int, default=1)
    ap.add_argument("--rtol", type=float, default=1e-5)
    a = ap.parse_args(argv)
    if shutil.which("Rscript") is None:
        print("Rscript not found: apt-get install r-base-core r-cran-survey r-cran-mass")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        sql = export(Path(a.db), a.wave, out)
        (out / "check.R").write_text(R_SCRIPT)
        subprocess.run(["Rscript", str(out / "check.R"), str(out)], check=True)
        r = pd.read_csv(out / "r.csv")
    x = sql.merge(r, on=["region", "indicator", "measure"])
    x["se_ratio"] = x.se / x.r_se
    x["est_ratio"] = x.estimate / x.r_est
    summary = x.groupby(["indicator", "measure"]).agg(
        regions=("region", "size"),
        se_ratio_min=("se_ratio", "min"),
        se_ratio_max=("se_ratio", "max"),
        est_ratio_max_dev=("est_ratio", lambda s: float((s - 1).abs().max())),
    )
    print(f"direct_estimates (SQL) vs R survey, calibrated design, wave {a.wave}, regions:")
    print(summary.to_string(float_format=lambda v: f"{v:.8f}"))
    worst = float((x.se_ratio - 1).abs().max())
    print(f"largest relative SE difference: {worst:.2e} (tolerance {a.rtol:g})")
    return 0 if worst <= a.rtol else 1


if __name__ == "__main__":
    sys.exit(main())
