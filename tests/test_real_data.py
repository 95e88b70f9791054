"""The real-data loader (scripts/eval/real_data.py): each table fetched from the Debian archive has
the shape, columns and types the real-population benchmarks and tests rely on.

The first run downloads r-cran-sampling, r-cran-laeken and r-cran-aer (about 5 MB); later runs read
the cache (data/real, or $SURVEYSYNTH_REAL_DATA). Without apt-get or the archive the tests FAIL,
never skip.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from harness import ROOT

sys.path.insert(0, str(ROOT / "scripts" / "eval"))
import real_data

EXPECTED = {
    # name: (rows, columns that must be there, of them the integer ones, the text ones)
    "swissmunicipalities": (
        2896,
        ["CT", "REG", "COM", "Nom", "POPTOT", "HApoly", "Airbat", "Pop65P", "Surfacesbois"],
        ["CT", "REG", "COM", "POPTOT", "HApoly", "Airbat", "Pop65P"],
        ["Nom"],
    ),
    "belgianmunicipalities": (
        589,
        ["Commune", "INS", "Province", "Arrondiss", "Tot04", "Women04", "averageincome"],
        ["INS", "Province", "Arrondiss", "Tot04", "Women04", "averageincome", "medianincome"],
        ["Commune"],
    ),
    "eusilc": (
        14827,
        ["db030", "hsize", "db040", "age", "rb090", "eqIncome", "py010n", "rb050"],
        ["db030", "hsize", "age"],
        ["db040", "rb090", "pb220a"],
    ),
    "CPS1988": (
        28155,
        ["wage", "education", "experience", "ethnicity", "smsa", "region", "parttime"],
        ["education", "experience"],
        ["ethnicity", "smsa", "region", "parttime"],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_table_shape_columns_and_types(name):
    rows, cols, ints, texts = EXPECTED[name]
    df = real_data.load(name)
    assert len(df) == rows
    assert set(cols) <= set(df.columns), sorted(set(cols) - set(df.columns))
    assert list(df.index) == list(range(rows))
    for c in ints:
        assert df[c].dtype == np.int64, (c, df[c].dtype)
    for c in texts:
        assert df[c].dtype == object and df[c].dropna().map(type).eq(str).all(), c


def test_table_contents_are_the_known_ones():
    """A few published facts, so a wrong object or a shifted column cannot pass."""
    swiss = real_data.load("swissmunicipalities")
    assert swiss.CT.nunique() == 26 and swiss.REG.nunique() == 7
    assert swiss.COM.is_unique
    assert swiss.loc[swiss.Nom == "Zurich", "POPTOT"].item() == 363273
    assert (swiss.P00BMTOT + swiss.P00BWTOT == swiss.POPTOT).all()
    belg = real_data.load("belgianmunicipalities")
    assert belg.INS.is_unique and belg.Province.nunique() == 9
    assert (belg.Men04 + belg.Women04 == belg.Tot04).all()
    silc = real_data.load("eusilc")
    assert silc.db040.nunique() == 9 and set(silc.rb090) == {"male", "female"}
    assert silc.db030.nunique() == 6000
    cps = real_data.load("CPS1988")
    assert set(cps.region) == {"northeast", "midwest", "south", "west"}
    assert cps.wage.min() > 0


def test_unknown_table_is_named():
    with pytest.raises(KeyError, match="unknown real table 'nope'"):
        real_data.load("nope")


def test_a_failed_fetch_raises_with_the_fix(tmp_path, monkeypatch):
    """With an empty cache and no apt-get on PATH the loader raises, naming the package."""
    monkeypatch.setenv("SURVEYSYNTH_REAL_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(real_data.RealDataError, match="r-cran-sampling"):
        real_data.load("belgianmunicipalities")
