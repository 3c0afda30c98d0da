"""`tep run PLAN --wait`, `tep status`, `tep report` against the operator and the emulator."""

import concurrent.futures
import pathlib

import pytest

from tep_operator import cli
from tests.emulator import Emulator, wait_for
from tests.integration.harness import Cluster, OperatorThread, make_plan
from tests.messages import runner_message as summary


def test_run_wait_follows_the_run_and_exits_with_its_code(
    kube: Emulator,
    cluster: Cluster,
    operator: OperatorThread,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kubeconfig = str(kube.kubeconfig(tmp_path / "cli-kubeconfig"))
    cluster.create_plan(make_plan(enabled=False))
    cluster.wait_status(lambda s: s.get("phase") == "Suspended")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            cli.main, ["run", "smoke", "-n", "qa", "--wait", "--timeout", "30", "--kubeconfig", kubeconfig]
        )
        (job,) = wait_for(
            lambda: cluster.jobs(**{"tep.dev/trigger": "manual"}), message="tep run made no Job"
        )
        name = job["metadata"]["name"]
        cluster.finish_pod(name, message=summary("Failed", passed=8, failed=1), exit_code=1)
        cluster.finish_job(name, failed_reason="BackoffLimitExceeded")
        assert waiting.result(timeout=30) == 1  # the runner's code for failed tests
    out = capsys.readouterr().out
    assert f"requested a run of qa/smoke (Job {name})" in out
    assert f"tep: {name}: Failed: 9 tests, 8 passed, 1 failed" in out

    assert cli.main(["status", "-n", "qa", "--kubeconfig", kubeconfig]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "NAME",
        "SCHEDULE",
        "ENABLED",
        "PHASE",
        "LAST",
        "RESULT",
        "PASSED",
        "FAILED",
        "XFAILED",
        "XPASSED",
        "WORKERS",
        "CPU",
        "IMBALANCE",
        "NEXT",
        "RUN",
    ]
    assert table[1].split() == [
        "smoke",
        "*/30",
        "*",
        "*",
        "*",
        "*",
        "false",
        "Suspended",
        "Failed",
        "8",
        "1",
        "0",
        "0",
        "2",  # the runner's workers, from its message
        "-",  # no cpuUtilization in it
        "-",  # not sharded: no imbalance
        "-",
    ]

    assert cli.main(["report", "smoke", "-n", "qa", "--kubeconfig", kubeconfig]) == 0
    assert capsys.readouterr().out.strip() == "qa/smoke/run/report.html"


def test_errors_are_one_line(
    kube: Emulator, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = str(kube.kubeconfig(tmp_path / "cli-kubeconfig"))
    assert cli.main(["run", "missing", "-n", "qa", "--kubeconfig", kubeconfig]) == 2
    assert "tep run: the API server answered 404" in capsys.readouterr().err
    assert cli.main(["report", "missing", "-n", "qa", "--kubeconfig", kubeconfig]) == 2
