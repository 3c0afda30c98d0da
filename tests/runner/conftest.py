"""Helpers for the runner's tests: real pytest runs through tep_runner.run, read back from the real files."""

import io
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import tep_runner


@pytest.fixture(autouse=True)
def _clean_pytest_env(monkeypatch):
    # The suites under test run in child processes that inherit os.environ; this test run's own xdist
    # variables (PYTEST_XDIST_TESTRUNUID ...) must not leak into them.
    for name in (
        "PYTEST_XDIST_TESTRUNUID",
        "PYTEST_XDIST_WORKER",
        "PYTEST_XDIST_WORKER_COUNT",
        "PYTEST_ADDOPTS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")


@dataclass
class Outcome:
    code: int
    output: str
    reports: Path
    message: dict
    message_bytes: int

    @property
    def plan_dir(self) -> Path:
        return self.reports / "qa" / "demo"

    @property
    def run_dir(self) -> Path:
        return self.reports / self.message["reportPath"].rsplit("/", 1)[0]

    def summary(self, folder: Path | None = None) -> dict:
        return json.loads(((folder or self.run_dir) / "summary.json").read_text())


def _runner_env(tmp_path: Path, tests_dir: Path, **settings: str) -> dict[str, str]:
    return {
        "TEP_NAMESPACE": "qa",
        "TEP_PLAN": "demo",
        "TEP_TESTS_DIR": str(tests_dir),
        "TEP_REPORTS_DIR": str(tmp_path / "reports"),
        "TEP_WORKERS": "2",
        "TEP_TERMINATION_LOG": str(tmp_path / "termination-log"),
        "TMPDIR": str(tmp_path),  # the suites' own temp files (run_once, tmp_path) stay in this test's folder
        **settings,
    }


@pytest.fixture
def runner_env(tmp_path):
    """The TEP_* settings for a run of tests_dir into tmp_path/reports, with overrides."""
    return lambda tests_dir, **settings: _runner_env(tmp_path, tests_dir, **settings)


@pytest.fixture
def run_runner(tmp_path):
    """Run tep_runner.run on a tests folder with the given TEP_* overrides; read the termination message."""

    def run(tests_dir: Path, **settings: str) -> Outcome:
        env = _runner_env(tmp_path, tests_dir, **settings)
        out = io.StringIO()
        code = tep_runner.run(env, stdout=out)
        raw = Path(env["TEP_TERMINATION_LOG"]).read_bytes()
        return Outcome(code, out.getvalue(), Path(env["TEP_REPORTS_DIR"]), json.loads(raw), len(raw))

    return run


@pytest.fixture
def write_suite(tmp_path):
    """Write {relative path: source} into tmp_path/<name>; return the folder."""

    def write(name: str, files: dict[str, str]) -> Path:
        folder = tmp_path / name
        for relative, text in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return folder

    return write
