"""Settings for the test suite (pytest's DJANGO_SETTINGS_MODULE, in pyproject.toml).

`uniware.settings` defaults to production: no DEBUG, no built-in SECRET_KEY. The tests run in
development mode, as `make demo` does, so that `make test` works on a clean clone with no
environment at all. The mode is set in the environment (not by overriding names after the
import) because settings.py derives much from it at import time (secret key, hosts, static
storage, HTTPS redirects), and because worker processes started by the tests inherit it.
An explicit `DEBUG=0` in the environment is respected.
"""

import os

os.environ.setdefault("DEBUG", "1")

from uniware.settings import *  # noqa: E402, F403
