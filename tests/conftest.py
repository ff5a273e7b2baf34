"""Shared fixtures.

Tests marked `postgres` need PostgreSQL (row locks, real concurrency). Locally, on SQLite, they
are skipped with the reason; in CI (`REQUIRE_SERVICES=1`) a skip is turned into a failure, so a
green CI always means they ran.
"""

from __future__ import annotations

import os

import pytest
from django.db import connection

from .factories import make_world

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _require_postgres(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _skip_or_fail("this test needs PostgreSQL: set DATABASE_URL=postgres://...")


@pytest.fixture(autouse=True)
def _fresh_tenant_zone():
    """The tenant's zone is cached per process; a rolled-back test must not leave its zone."""
    from uniware.core.zones import forget_tenant_zone

    forget_tenant_zone()
    yield
    forget_tenant_zone()


@pytest.fixture(autouse=True)
def _installation_defaults(request):
    """Transactional tests flush the database afterwards, taking the rows migrations made
    (tenant, default sequences, roles) with them: put them back for every test that uses it."""
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if not (marker or {"db", "transactional_db"} & names):
        return
    transactional = "transactional_db" in names or (marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    from uniware.core.defaults import ensure_defaults
    from uniware.core.zones import tenant_zone

    ensure_defaults()
    tenant_zone()  # read once, as a running server has (tests count a page's queries)


@pytest.fixture
def world(db):
    return make_world()


@pytest.fixture
def require_services():
    """For tests that need Redis, Chromium ...: `require_services("Redis is not running")`."""
    return _skip_or_fail
