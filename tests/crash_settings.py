"""Settings of the worker processes that tests/test_crashes.py kills: the test suite's, with
a short notification claim (so a killed worker's claims expire within the test)."""

from uniware.settings_test import *  # noqa: F403

NOTIFICATIONS_LEASE_SECONDS = 12
