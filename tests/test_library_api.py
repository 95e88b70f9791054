"""The library's packaging promises: one version for the library and the dbt package (checked
by every dbt Python model), PyYAML declared, and SynthConfig built from plain Python values."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from harness import ROOT

import surveysynth
from surveysynth import SynthConfig
from surveysynth.contract.config import SynthConfigError
from surveysynth.versions import VersionMismatchError, require_matching_versions

PYTHON_MODELS = [*ROOT.glob("python_models/*.py"), *ROOT.glob("models/**/*.py")]


def test_library_pyproject_and_dbt_package_share_one_version():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dbt_project = yaml.safe_load((ROOT / "dbt_project.yml").read_text())
    assert pyproject["version"] == surveysynth.__version__ == dbt_project["version"]
    passed = dbt_project["models"]["surveysynth"]["+surveysynth_version"]
    assert passed == dbt_project["version"]
    deps = [re.split(r"[<>=!~ ]", d)[0].lower() for d in pyproject["dependencies"]]
    assert "pyyaml" in deps


def test_version_mismatch_is_a_clear_error():
    assert require_matching_versions(surveysynth.__version__) == surveysynth.__version__
    with pytest.raises(VersionMismatchError, match=r"dbt package is version 9\.9\.9.*library"):
        require_matching_versions("9.9.9")
    with pytest.raises(VersionMismatchError, match="did not reach the Python model"):
        require_matching_versions(None)


@pytest.mark.parametrize("path", PYTHON_MODELS, ids=lambda p: p.name)
def test_every_python_model_checks_the_version(path):
    source = path.read_text()
    if "def model(dbt, session)" not in source:
        pytest.fail(f"{path} is not a dbt Python model")
    assert 'require_matching_versions(dbt.config.get("surveysynth_version"))' in source, path


def _config(outcomes):
    return SynthConfig(unit_id="id", wave="wave", cell_dims=["region"], outcomes=outcomes)


def test_synthconfig_takes_plain_outcome_mappings():
    c = _config({"turnover": "continuous", "status": {"type": "categorical", "levels": ["a", "b"]}})
    assert c.outcome_names == ("turnover", "status")
    assert c.outcome("turnover").type == "continuous"
    assert c.outcome("status").levels == ("a", "b")
    assert c.cell_dims == ("region",)


@pytest.mark.parametrize(
    "outcomes, message",
    [
        (["turnover"], "OutcomeSpec values or a mapping"),
        ("turnover", "must map outcome name"),
        ({"turnover": "bogus"}, "bogus"),
        ({"turnover": {"levels": [1]}}, "must be a mapping with a 'type'"),
    ],
)
def test_synthconfig_rejects_other_outcomes_clearly(outcomes, message):
    with pytest.raises(SynthConfigError, match=message):
        _config(outcomes)
