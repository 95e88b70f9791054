"""Real public populations from Debian's R data packages, as pandas DataFrames.

    from real_data import load
    swiss = load("swissmunicipalities")

The tables ship in Debian packages of CRAN packages; nothing here needs R. A table's package is
fetched once with `apt-get download` (running `apt-get update -qq` once if the archive lists are
missing) into the cache directory, unpacked with `dpkg-deb -x`, and its .rda / .RData is read with
the `rdata` package. The cache is data/real/ under the repository, or $SURVEYSYNTH_REAL_DATA.
A lock file makes concurrent first loads (parallel tests) fetch once.

Types: R factors become text, integer columns without missing values int64, with missing values
float64 (NaN); the row index is a RangeIndex. Without apt-get, dpkg-deb or access to the archive,
:func:`load` raises :class:`RealDataError` saying what failed and how to fix it: tests that use
these tables fail, never skip.

| name | Debian package | what it is |
|---|---|---|
| swissmunicipalities | r-cran-sampling | 2,896 Swiss municipalities (2000): canton, region, areas, population by age |
| belgianmunicipalities | r-cran-sampling | 589 Belgian communes (2004): province, district, population, income |
| eusilc | r-cran-laeken | 14,827 persons, synthetic Austrian EU-SILC 2006: state, age, sex, incomes |
| CPS1988 | r-cran-aer | 28,155 men, March 1988 Current Population Survey: wage, education, region |
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


class RealDataError(RuntimeError):
    """A real table could not be fetched or read; the message says why and what to do."""


@dataclass(frozen=True)
class Source:
    package: str  # Debian package
    r_package: str  # directory under usr/lib/R/site-library
    file: str  # file under the R package's data/
    obj: str  # object name inside the file


SOURCES: dict[str, Source] = {
    "swissmunicipalities": Source(
        "r-cran-sampling", "sampling", "swissmunicipalities.rda", "swissmunicipalities"
    ),
    "belgianmunicipalities": Source(
        "r-cran-sampling", "sampling", "belgianmunicipalities.rda", "belgianmunicipalities"
    ),
    "eusilc": Source("r-cran-laeken", "laeken", "eusilc.RData", "eusilc"),
    "CPS1988": Source("r-cran-aer", "AER", "CPS1988.rda", "CPS1988"),
}


def cache_dir() -> Path:
    """Where packages are downloaded and unpacked: $SURVEYSYNTH_REAL_DATA or data/real/."""
    env = os.environ.get("SURVEYSYNTH_REAL_DATA")
    return Path(env) if env else ROOT / "data" / "real"


def load(name: str) -> pd.DataFrame:
    """The table ``name`` (a key of :data:`SOURCES`), fetched on first use."""
    if name not in SOURCES:
        raise KeyError(f"unknown real table '{name}'; known: {', '.join(sorted(SOURCES))}")
    src = SOURCES[name]
    path = data_file(src)
    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdata warns about R classes it converts by default
        try:
            obj = rdata.read_rda(str(path))[src.obj]
        except Exception as exc:
            raise RealDataError(f"could not read {src.obj} from {path}: {exc}") from exc
    return _tidy(obj)


def data_file(src: Source) -> Path:
    """The unpacked data file of ``src``, downloading and unpacking its package if needed."""
    root = cache_dir()
    target = root / src.package / "x" / "usr/lib/R/site-library" / src.r_package / "data" / src.file
    if target.exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{src.package}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            _install(src.package, root / src.package)
    if not target.exists():
        raise RealDataError(f"{src.package} was unpacked but holds no {target}")
    return target


def _install(package: str, dest: Path) -> None:
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RealDataError(
                f"{tool} not found: the real-data tables come from Debian package {package}; "
                f"run on Debian/Ubuntu, or unpack {package}'s .deb into {dest / 'x'}"
            )
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        deb = _download(package, Path(tmp))
        unpacked = Path(tmp) / "x"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        shutil.copy2(deb, dest / deb.name)
        unpacked.rename(dest / "x")


def _download(package: str, where: Path) -> Path:
    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, cwd=where, check=False, capture_output=True, text=True)

    got = run(["apt-get", "download", package])
    if got.returncode != 0:
        upd = run(["apt-get", "update", "-qq"])
        got = run(["apt-get", "download", package])
        if got.returncode != 0:
            raise RealDataError(
                f"apt-get download {package} failed: {(got.stderr or got.stdout).strip()[-500:]}"
                f" (apt-get update: {(upd.stderr or 'ok').strip()[-300:]}). Needs the Debian "
                "archive: as root, run `apt-get update`"
            )
    debs = sorted(where.glob(f"{package}_*.deb"))
    if not debs:
        raise RealDataError(f"apt-get download {package} left no .deb in {where}")
    return debs[-1]


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Plain dtypes: factors as text, complete integers as int64, others as float64."""
    out = {}
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
            out[c] = (
                s.astype(object).where(s.notna(), None).map(lambda v: v if v is None else str(v))
            )
        elif pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
            out[c] = s.astype("int64")
        elif pd.api.types.is_bool_dtype(s.dtype) and not s.isna().any():
            out[c] = s.astype(bool)
        else:
            out[c] = pd.to_numeric(s, errors="coerce").astype("float64")
    return pd.DataFrame({c: np.asarray(v) for c, v in out.items()})
