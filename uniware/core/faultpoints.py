"""Named points where a test can hold a worker, to kill it there (tests/test_crashes.py).

`UNIWARE_PAUSE_AT="name"` (or `"name@n"`: at its n-th passage) makes the process that reaches
that point write its name and pid to `UNIWARE_PAUSE_FILE` and then sleep
`UNIWARE_PAUSE_SECONDS` (default 600): the test waits for the file and kills the process
group. Without the variable (production) a point costs one comparison.
"""

from __future__ import annotations

import os
import time

_AT = os.environ.get("UNIWARE_PAUSE_AT", "")
_passed: dict[str, int] = {}


def pause_point(name: str) -> None:
    """Hold here if the environment asks for it (tests only)."""
    if not _AT:
        return
    wanted, _, nth = _AT.partition("@")
    if wanted != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] != int(nth or 1):
        return
    marker = os.environ.get("UNIWARE_PAUSE_FILE", "")
    if marker:
        with open(marker, "w") as f:
            f.write(f"{name} {os.getpid()}\n")
    time.sleep(float(os.environ.get("UNIWARE_PAUSE_SECONDS", "600")))
