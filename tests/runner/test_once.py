import subprocess
import sys
import tempfile
import uuid

import pytest

from tep_runner.once import OnceError, run_once

SUITE = {
    "conftest.py": """
        import os, time
        import pytest
        from tep_runner.once import run_once

        def _setup():
            with open(os.environ["CALLS_FILE"], "a") as f:
                f.write(f"{os.getpid()}\\n")
            time.sleep(0.3)  # widen the window in which workers race
            return {"token": os.urandom(4).hex()}

        @pytest.fixture(scope="session")
        def shared():
            return run_once("login", _setup)
    """,
    "test_many.py": """
        import os
        import pytest

        @pytest.mark.parametrize("i", range(16))
        def test_uses_shared(shared, i):
            with open(os.environ["SEEN_FILE"], "a") as f:
                f.write(f"{os.environ['PYTEST_XDIST_WORKER']} {shared['token']}\\n")
    """,
}


def test_setup_runs_once_across_four_workers(tmp_path, write_suite):
    tests = write_suite("suite", SUITE)
    calls, seen = tmp_path / "calls", tmp_path / "seen"
    env = {
        "CALLS_FILE": str(calls),
        "SEEN_FILE": str(seen),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tests), "-n", "4", "-q", "-p", "no:cacheprovider"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = seen.read_text().split()
    workers, tokens = set(lines[0::2]), set(lines[1::2])
    assert len(workers) == 4  # all four workers asked for the session ...
    assert len(calls.read_text().splitlines()) == 1  # ... the setup ran once ...
    assert len(tokens) == 1  # ... and every worker got its result
    assert len(list(tmp_path.glob("tep-once-*/*/login.json"))) == 1  # in the temp dir, keyed by the run


@pytest.fixture(autouse=True)
def _private_tempdir(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_failure_is_recorded_for_the_other_callers(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)
    calls = []

    def broken():
        calls.append(1)
        raise ConnectionError("login service down")

    with pytest.raises(ConnectionError):
        run_once("broken", broken)
    with pytest.raises(OnceError, match="ConnectionError: login service down"):
        run_once("broken", broken)
    assert calls == [1]


def test_keyed_per_run(monkeypatch):
    values = []
    for _ in range(2):
        monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)
        values.append(run_once("per-run", lambda: uuid.uuid4().hex))
        assert run_once("per-run", lambda: "not called") == values[-1]
    assert values[0] != values[1]
