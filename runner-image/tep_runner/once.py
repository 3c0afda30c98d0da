"""Run a setup once per test run, however many xdist workers ask for it.

A session-scoped fixture runs once *per worker* under pytest-xdist: with `-n 4`, a login, a browser or a
seeded database would be set up four times. `run_once` makes the first worker run the setup while the
others wait on a file lock, then hands every worker the same (JSON-serializable) result::

    import pytest
    from tep_runner.once import run_once

    @pytest.fixture(scope="session")
    def token():
        return run_once("login", lambda: api.login("qa-bot")["token"])

Every caller, including the one that ran the setup, gets the value as read back from JSON. If the setup
raises, the error is recorded and every other worker fails with it too instead of retrying. Runs are told
apart by PYTEST_XDIST_TESTRUNUID (the same in all workers of one run); without xdist the key is the
process. Files live in the temp dir (/tmp in the runner pod). There is no matching once-per-run teardown:
workers finish at different times, so clean up in the setup of the next run or let the data expire.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class OnceError(RuntimeError):
    """The shared setup failed (in this worker or another one)."""


def run_once(name: str, setup: Callable[[], Any]) -> Any:
    """Call `setup()` once per test run under the key `name` and return its result to every caller."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"run_once: name {name!r} may hold only letters, digits, '.', '_' and '-'")
    run_key = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid-{os.getpid()}"
    folder = Path(tempfile.gettempdir()) / f"tep-once-{os.getuid()}" / run_key
    folder.mkdir(parents=True, exist_ok=True)
    result_file = folder / f"{name}.json"
    with FileLock(folder / f"{name}.lock"):
        if not result_file.exists():
            try:
                record = json.dumps({"value": setup()})
            except Exception as e:
                result_file.write_text(json.dumps({"error": f"{type(e).__name__}: {e}"}))
                raise
            result_file.write_text(record)
        record = json.loads(result_file.read_text())
    if "error" in record:
        raise OnceError(f"run_once({name!r}) failed in another worker: {record['error']}")
    return record["value"]
