"""The library and the dbt package are released together: a dbt Python model of surveysynth
version X must run on the library of version X, since the models call library functions whose
inputs and outputs change between versions. Every Python model calls
:func:`require_matching_versions` with the dbt package's version (dbt_project.yml ``version``,
passed to the models as their ``surveysynth_version`` config)."""

from __future__ import annotations


class VersionMismatchError(RuntimeError):
    """The installed library and the dbt package are different versions."""


def require_matching_versions(dbt_package_version: object) -> str:
    """Stop with a clear message unless the library's version equals the dbt package's.

    Returns the common version. ``dbt_package_version`` is what the model's
    ``dbt.config.get("surveysynth_version")`` gave (None when the config is missing)."""
    from surveysynth import __version__

    if dbt_package_version is None or str(dbt_package_version).strip() == "":
        raise VersionMismatchError(
            "surveysynth: the dbt package's version did not reach the Python model (config "
            "'surveysynth_version', set from dbt_project.yml's version). Use the dbt package and "
            f"the Python library of the same release; the library here is {__version__}."
        )
    wanted = str(dbt_package_version).strip()
    if wanted != __version__:
        raise VersionMismatchError(
            f"surveysynth: the dbt package is version {wanted} but the Python library installed "
            f"in dbt's environment is version {__version__}. Install the matching library "
            f"(pip install 'surveysynth=={wanted}') or pin the dbt package to {__version__} in "
            "packages.yml."
        )
    return __version__
