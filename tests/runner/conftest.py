"""Helpers for the runner's tests: real pytest runs through tep_runner.run, read back from the real files."""

import io
import json
import os
import re
import subprocess
import sysconfig
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import tep_runner

# The console script, as the suite's owners type it: `python -m pytest` would put the working directory on
# sys.path, and so differ from it.
BARE_PYTEST = str(Path(sysconfig.get_path("scripts"), "pytest"))
PLUGINS = Path(__file__).parent / "plugins"  # tep_outcomes, loaded into bare pytest and the runner alike
# pytest-asyncio (this project's test extra, not in the runner image) warns in pytest_configure, which
# `filterwarnings = error` turns into an internal error: keep it out of both runs.
OUTCOMES_PLUGIN = ["-p", "tep_outcomes", "-p", "no:asyncio"]
# pytest's final line: "==== 1 failed, 2 passed, 1 xfailed in 0.12s ====" (or "3 tests collected in ...").
_FINAL = re.compile(r"^(?:=+ )?(\d+ [^=]+) in [\d.]+s(?: \([\d:]+\))?(?: =+)?$", re.MULTILINE)
# The final line's words as summary.json names them.
_KEYS = {"error": "errors", "errors": "errors", "rerun": "reruns", "tests collected": "collected",
         "test collected": "collected"}  # fmt: skip


def final_line(output: str) -> dict[str, int]:
    """The counts of pytest's last final line, keyed as in summary.json (warnings and deselected left out)."""
    found = _FINAL.findall(output)
    assert found, output
    counts = {}
    for part in found[-1].split(", "):
        number, _, word = part.partition(" ")
        if number.isdigit() and not word.startswith(("warning", "deselected")):
            counts[_KEYS.get(word, word)] = int(number)
    return counts


@dataclass
class BareRun:
    code: int
    output: str
    outcomes: dict | None  # node id -> categories, from tep_outcomes

    @property
    def final(self) -> dict[str, int]:
        return final_line(self.output)


def outcome_env(tmp_path: Path, name: str) -> dict[str, str]:
    """What loads tep_outcomes into a pytest run (bare or the runner's) and where it writes."""
    return {"PYTHONPATH": str(PLUGINS), "TEP_OUTCOMES_FILE": str(tmp_path / f"outcomes-{name}.json")}


@pytest.fixture
def bare_pytest(tmp_path):
    """`pytest` as the suite's owners run it, in `cwd`, with tep_outcomes recording each test's outcome."""

    def run(cwd: Path, *args: str) -> BareRun:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | outcome_env(
            tmp_path, "bare"
        )
        done = subprocess.run(
            [BARE_PYTEST, "-p", "no:cacheprovider", *OUTCOMES_PLUGIN, *args],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        written = Path(env["TEP_OUTCOMES_FILE"])  # none when pytest stopped before its session
        outcomes = json.loads(written.read_text()) if written.exists() else None
        return BareRun(done.returncode, done.stdout + done.stderr, outcomes)

    return run


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
