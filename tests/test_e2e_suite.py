"""The e2e suite runs only on a real cluster, so what can be checked without one is checked here:
with every variable it needs set (to values never used), pytest plans the whole suite, every
collected item is a test, and every fixture it asks for exists. A helper whose name starts with
`test` (collected, then failing at setup on a real cluster) fails here."""

import os
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
PRETEND = {
    "TEP_E2E_KUBECONFIG": "/nonexistent/kubeconfig",
    "TEP_E2E_RUNNER_IMAGE": "tep-runner:never-pulled",
    "TEP_E2E_OPERATOR_IMAGE": "tep-operator:never-pulled",
}


def test_every_collected_e2e_item_is_a_test_with_its_fixtures() -> None:
    env = {**os.environ, **PRETEND}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--setup-plan", "-q", "-p", "no:cacheprovider", "tests/e2e"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr
    planned = re.findall(r"^\s*(tests/e2e/\S+::(\S+))", done.stdout, re.MULTILINE)
    assert planned, done.stdout
    for node, function in planned:
        assert function.startswith("test_"), f"{node} is collected but is not a test"
    modules = {node.split("::")[0] for node, _ in planned}
    # every e2e module is collected (none hides behind an import error or a wrong name)
    assert modules == {str(p.relative_to(REPO)) for p in (REPO / "tests/e2e").glob("test_*.py")}


def test_the_e2e_operator_fixture_finds_logged_errors(tmp_path: pathlib.Path) -> None:
    from tests.e2e.conftest import OperatorProcess
    from tests.operator_log import STOP_MARK

    log = tmp_path / "operator.log"
    operator = OperatorProcess("ns", log, "")
    log.write_text(
        "\n===== start: tep operator\n"
        "2026-12-01 21:40:03,120 INFO kopf.activities.startup Activity 'configure' succeeded.\n"
        "2026-12-01 21:40:04,001 WARNING kopf.objects CronJob smoke was edited by hand\n"
        "2026-12-01 21:40:05,002 ERROR tep_operator.resync Resync failed; trying again in 60s\n"
        "Traceback (most recent call last):\n"
        '  File "reconciler.py", line 1, in resync_all\n'
        "AttributeError: 'Kube' object has no attribute 'list_managed_cronjobs'\n"
        f"\n{STOP_MARK}\n"
        "2026-12-01 21:40:06,003 ERROR kopf._core.reactor.observation Request attempt #1/9 failed; "
        "will retry: GET https://10.0.0.1/api -> ClientConnectionError('Connector is closed.')\n"
        "2026-12-01 21:40:06,004 ERROR kopf.objects Handler 'job_event' failed with an exception.\n"
    )
    found = operator.logged_errors()
    assert [line.split(": ", 1)[1] for line in found] == [
        "2026-12-01 21:40:05,002 ERROR tep_operator.resync Resync failed; trying again in 60s",
        "Traceback (most recent call last):",
        "2026-12-01 21:40:06,004 ERROR kopf.objects Handler 'job_event' failed with an exception.",
    ]
    assert found[0].startswith(f"{log}:5: ")
