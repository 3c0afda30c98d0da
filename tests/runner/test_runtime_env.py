"""`make demo` runs users' suites as the runner image does: runtime dependencies only, from the lock.

The development venv (.venv) has the test extra, whose pytest plugins (pytest-asyncio, kmock's)
load into every pytest it starts: their deprecation warnings kill a suite with
`filterwarnings = error`. The demo's venv (.venv-run, `make run-venv`) is built from
requirements.lock and the package without extras; `make test` builds it before pytest starts,
so here `make run-venv` only checks that it is up to date.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.lock import lock_requirements, pinned_version

REPO = pathlib.Path(__file__).resolve().parents[2]
RUN_BIN = REPO / ".venv-run" / "bin"
PLAN = (
    "apiVersion: tep.dev/v1alpha1\nkind: TestPlan\nmetadata: {name: strict}\n"
    "spec: {crontab: '@daily', source: {configMap: {name: strict-tests}}, pytest: {workers: 2}}\n"
)


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", *args], cwd=REPO, capture_output=True, text=True, timeout=900)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_url(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def run_bin() -> pathlib.Path:
    done = make("run-venv")
    assert done.returncode == 0, done.stdout + done.stderr
    return RUN_BIN


def test_the_runtime_venv_holds_the_lock_and_nothing_of_the_test_extra(run_bin: pathlib.Path) -> None:
    listed = subprocess.run(
        [str(run_bin / "python"), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {canonicalize_name(d["name"]): d["version"] for d in json.loads(listed.stdout)}
    expected = {
        name: pinned_version(req)
        for name, req in lock_requirements().items()
        if req.marker is None or req.marker.evaluate()
    }
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    expected[canonicalize_name(project["name"])] = project["version"]
    installed.pop("pip")  # the venv's own installer
    assert installed == expected
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    dev_only = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["test"]}
    assert dev_only - runtime, "the test extra has development-only packages"
    assert not (dev_only - runtime) & installed.keys()


def test_a_suite_with_filterwarnings_error_passes(run_bin: pathlib.Path, tmp_path: pathlib.Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (tests / "test_strict.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    (tmp_path / "plan.yaml").write_text(PLAN)
    done = subprocess.run(
        [str(run_bin / "tep"), "run", "--local", "-f", "plan.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tep: Passed: 2 tests, 2 passed, 0 failed" in done.stdout
    log = (tmp_path / "tep-reports/default/strict/latest/pytest.log").read_text()
    assert "2 passed" in log and "warning" not in log.lower()


def test_make_demo_runs_in_the_runtime_venv_without_a_warning(
    run_bin: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The README's first command: the run, then the report browser showing it (until stopped)."""
    port = free_port()
    demo = subprocess.Popen(
        ["make", "-s", "demo", f"DEMO_REPORTS={tmp_path}", f"DEMO_PORT={port}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make and its `tep serve` child are stopped together below
    )
    output: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if line.startswith("tep serve:"):
                break
        text = "".join(output)
        assert f"http://127.0.0.1:{port}/" in text, text
        plans = json.loads(wait_for_url(f"http://127.0.0.1:{port}/api/plans"))
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=30)
    assert "tep: Passed: 9 tests, 9 passed, 0 failed" in text
    assert "warning" not in text.lower()
    assert [(p["namespace"], p["plan"], p["lastRun"]["result"]) for p in plans["plans"]] == [
        ("default", "smoke", "Passed")
    ], plans
    run = tmp_path / "default/smoke/latest"
    assert (run / "report.html").is_file()
    # pytest's header names each plugin it loaded ("xdist-3.8.0"): each must come from the lock.
    (plugins,) = [
        line for line in (run / "pytest.log").read_text().splitlines() if line.startswith("plugins:")
    ]
    locked = lock_requirements()
    for plugin in plugins.removeprefix("plugins:").split(","):
        name, _, version = plugin.strip().rpartition("-")
        req = locked.get(canonicalize_name(f"pytest-{name}"))
        assert req is not None and pinned_version(req) == version, f"{plugin.strip()} is not from the lock"


def test_an_installed_wheel_finds_the_crd_for_the_schema_check(
    run_bin: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """.venv-run holds a regular install, as the images do: the CRD must travel as package data."""
    located = subprocess.run(
        [str(run_bin / "python"), "-c", "import tep_operator; print(tep_operator.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ".venv-run" in located.stdout and str(REPO / "operator") not in located.stdout
    (tmp_path / "tests").mkdir()
    (tmp_path / "plan.yaml").write_text(PLAN.replace("workers: 2", "worker: 2"))
    done = subprocess.run(
        [str(run_bin / "tep"), "run", "--local", "-f", "plan.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "spec.pytest.worker: unknown field" in done.stderr, done.stderr
