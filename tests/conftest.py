"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import engines
import pytest

# fixtures of the design-layer tests (demo data and build), shared by tests/test_design_*.py, and
# the whole demo builds that several modules read (tests/demo_builds.py)
pytest_plugins = ["design_fixtures", "demo_builds"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[engines.PostgresServer]:
    """A private PostgreSQL server for the whole session (started on first use, removed at the end).

    Fails, never skips, when the server cannot start: the error says why and how to fix it."""
    with engines.postgres_server() as server:
        yield server
