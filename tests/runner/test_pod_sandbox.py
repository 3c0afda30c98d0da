"""The runner under its pod's conditions: the CronJob the operator renders for an example plan, its pod
run as the kubelet would run it (tests/runner/sandbox.py: bubblewrap, the uid of the spec, a read-only
image, the volumes at their mountPaths), judged against bare pytest on the same suite.

Skipped only where bubblewrap cannot make a sandbox (the reason says why); CI installs it (.ci/run).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tep_operator import names
from tep_operator.config import OperatorConfig
from tep_operator.cronjob import RUNNER_UID, render_cronjob
from tep_operator.local import load_plan_file
from tep_operator.plan import read_plan
from tep_runner.htmlreport import parse
from tests.dockerfile import image_config
from tests.runner import sandbox

EXAMPLES = sandbox.REPO / "examples"
SMOKE = EXAMPLES / "smoke"
IMAGE = image_config(sandbox.REPO / "runner-image" / "Dockerfile")
CONFIG = OperatorConfig(runner_image="tep-runner:sandbox", reports_claim="tep-reports")
SCHEDULED_MINUTES = 29400000  # the CronJob controller names its Job <cronjob>-<scheduled minutes>
RUN_ARTIFACTS = ("report.html", "junit.xml", "summary.json", "pytest.log")
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
COUNTS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")


def rendered(plan_file: Path, **spec: Any) -> dict[str, Any]:
    body = load_plan_file(plan_file)
    body["metadata"] |= {"namespace": "qa", "uid": "0a1b-uid", "generation": 1}
    body["spec"] |= spec
    return render_cronjob(read_plan(body), CONFIG)


def scheduled_pod(
    cronjob: dict[str, Any],
    folder: Path,
    reports: Path,
    index: int | None = None,
    tests: Path = SMOKE / "tests",
) -> tuple[sandbox.Pod, dict[str, Any]]:
    """The pod of a scheduled run: the job template's, with what the API server and the Job controller add
    (the Job's labels; for the pod of `index` of an Indexed Job its annotation and JOB_COMPLETION_INDEX)."""
    job = f"{cronjob['metadata']['name']}-{SCHEDULED_MINUTES}"
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"]["spec"]["template"])
    labels = {
        **template["metadata"]["labels"],
        names.LABEL_JOB_NAME: job, "batch.kubernetes.io/job-name": job,
        names.LABEL_CONTROLLER_UID: "c0ffee", "batch.kubernetes.io/controller-uid": "c0ffee",
    }  # fmt: skip
    annotations = dict(template["metadata"]["annotations"])
    if index is not None:
        annotations[COMPLETION_INDEX] = labels[COMPLETION_INDEX] = str(index)
        for container in [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]:
            ref = {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}
            container["env"].insert(0, {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": ref}})
    pod = sandbox.Pod(
        template["spec"], name=f"{job}-{index or 0}-x7k2p", labels=labels, annotations=annotations,
        folder=folder, image=IMAGE, claims={CONFIG.reports_claim: reports},
        config_maps={"smoke-tests": tests},
    )  # fmt: skip
    return pod, template["spec"]


@pytest.fixture
def pod_folder(tmp_path):
    sandbox.require()
    return tmp_path / "pod"


def bare_counts(bare_pytest, tests: Path) -> dict[str, int]:
    done = bare_pytest(tests)
    assert done.code == 0, done.output
    return done.final


def check_run(reports: Path, message: dict[str, Any], expected: dict[str, int]) -> None:
    """One story: the termination message, summary.json, junit.xml and the report count what bare pytest
    counted; every artifact is there, on the claim, written by the pod's uid."""
    assert message["result"] == "Passed", message
    assert {k: message[k] for k in COUNTS if message[k]} == {k: v for k, v in expected.items() if k in COUNTS}
    run_dir = reports / message["reportPath"].rsplit("/", 1)[0]
    assert run_dir.name == f"20251124T160000Z-{SCHEDULED_MINUTES}"  # the run id from the Job's name
    for name in RUN_ARTIFACTS:
        assert (run_dir / name).stat().st_size > 0, name
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("result", "total", *COUNTS):
        assert summary[key] == message[key], key
    assert len(ET.parse(run_dir / "junit.xml").getroot().findall(".//testcase")) == summary["total"]
    assert len(parse((run_dir / "report.html").read_text()).data["tests"]) == summary["total"]
    plan_dir = run_dir.parent
    assert (plan_dir / "latest").readlink() == Path(run_dir.name)
    assert json.loads((plan_dir / ".history.jsonl").read_text().splitlines()[-1])["runId"] == run_dir.name
    if os.geteuid() == 0:  # as root the sandbox runs as the pod's uid for real
        assert {p.stat().st_uid for p in run_dir.rglob("*")} == {RUNNER_UID}


def test_a_configmap_plan_runs_in_its_pod_as_bare_pytest_judges_it(pod_folder, tmp_path, bare_pytest):
    cronjob = rendered(SMOKE / "plan.yaml")
    pod, spec = scheduled_pod(cronjob, pod_folder, tmp_path / "claim")
    (runner,) = spec["containers"]
    assert "initContainers" not in spec
    done = pod.run(runner)
    assert done.code == 0, done.output
    assert done.denied_writes == [], done.output
    check_run(tmp_path / "claim", json.loads(pod.message(runner)), bare_counts(bare_pytest, SMOKE / "tests"))
    # The source stayed as the kubelet wrote it: nothing (a cache, bytecode) was added beside the tests.
    keys = [p.name for p in (SMOKE / "tests").iterdir() if p.is_file()]
    assert sorted(p.name for p in pod.volumes["tests"].iterdir()) == sorted(
        [*keys, "..data", sandbox.CONFIGMAP_FOLDER]
    )


@pytest.fixture
def git_server(tmp_path):
    """A git daemon on this machine serving a repository whose `tests/` is the smoke suite."""
    repo = tmp_path / "git" / "smoke"
    shutil.copytree(SMOKE, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    git = ["git", "-C", str(repo), "-c", "user.name=qa", "-c", "user.email=qa@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "smoke"], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen([
        "git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
        f"--base-path={repo.parent}", str(repo.parent),
    ])  # fmt: skip
    url = f"git://127.0.0.1:{port}/smoke"
    try:
        for _ in range(100):  # until it serves
            if subprocess.run(["git", "ls-remote", url], capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.05)
        yield url
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_a_git_plan_clones_then_runs_in_its_pod_as_bare_pytest_judges_it(
    pod_folder, tmp_path, bare_pytest, git_server
):
    source = {"git": {"url": git_server, "ref": "main", "path": "tests"}}
    cronjob = rendered(SMOKE / "plan.yaml", source=source)
    pod, spec = scheduled_pod(cronjob, pod_folder, tmp_path / "claim")
    (clone,), (runner,) = spec["initContainers"], spec["containers"]
    cloned = pod.run(clone, network=True)
    assert cloned.code == 0, cloned.output
    assert cloned.denied_writes == [], cloned.output
    done = pod.run(runner)
    assert done.code == 0, done.output
    assert done.denied_writes == [], done.output
    check_run(tmp_path / "claim", json.loads(pod.message(runner)), bare_counts(bare_pytest, SMOKE / "tests"))
    # Nothing but the checkout in the workspace: no cache or bytecode was written into it.
    checkout = pod.volumes["workspace"] / "src"
    assert tree(checkout) == tree(tmp_path / "git" / "smoke")


def tree(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder)) for p in folder.rglob("*") if ".git" not in p.relative_to(folder).parts
    }


def test_a_sharded_plan_runs_its_pods_into_one_merged_run(pod_folder, tmp_path, bare_pytest):
    """An Indexed Job's pods, one after the other on one claim: the last merges (a lock file on the claim)."""
    cronjob = rendered(SMOKE / "plan.yaml", shards=2)
    for index in range(2):
        pod, spec = scheduled_pod(cronjob, pod_folder / str(index), tmp_path / "claim", index)
        (runner,) = spec["containers"]
        done = pod.run(runner)
        assert done.code == 0, done.output
        assert done.denied_writes == [], done.output
    message = json.loads(pod.message(runner))
    assert message["shards"] == 2 and message["shard"] == 1, message
    run_dir = tmp_path / "claim" / message["reportPath"].rsplit("/", 2)[0]
    merged = json.loads((run_dir / "summary.json").read_text())
    check_run(tmp_path / "claim", {**merged, "v": 1}, bare_counts(bare_pytest, SMOKE / "tests"))


HANG = "test_hang.py::test_hang"
HANGING_SUITE = """\
import pathlib, time

def test_quick_a():
    pass

def test_quick_b():
    pass

def test_hang():
    while not all(pathlib.Path(f"/tmp/quick-{w}").exists() for w in ("a", "b")):
        time.sleep(0.05)
    pathlib.Path("/tmp/hang-started").touch()
    time.sleep(600)
"""
# conftest.py: each quick test leaves a mark in the pod's /tmp once it passed, so that the hanging test
# (and the SIGTERM) comes after both, whichever worker runs them.
HANGING_CONFTEST = """\
import pathlib

def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and "quick" in report.nodeid:
        pathlib.Path("/tmp/quick-" + report.nodeid[-1]).touch()
"""


def test_sigterm_at_the_deadline_stops_the_run_in_its_pod_with_every_report(pod_folder, tmp_path):
    """The kubelet's SIGTERM at activeDeadlineSeconds, to the runner as pid 1 of its container: within the
    pod's grace the run ends, names the hanging test and writes every artifact, on a read-only image."""
    tests = tmp_path / "hang"
    tests.mkdir()
    (tests / "test_hang.py").write_text(HANGING_SUITE)
    (tests / "conftest.py").write_text(HANGING_CONFTEST)
    cronjob = rendered(SMOKE / "plan.yaml", pytest={"workers": 2})
    pod, spec = scheduled_pod(cronjob, pod_folder, tmp_path / "claim", tests=tests)
    (runner,) = spec["containers"]
    running = pod.start(runner)
    started = pod.volumes["tmp"] / "hang-started"
    deadline = time.monotonic() + 120
    while not started.exists():
        assert running.process.poll() is None and time.monotonic() < deadline, (
            "the hanging test never started"
        )
        time.sleep(0.1)
    running.terminate()
    done = running.wait(timeout=spec["terminationGracePeriodSeconds"])
    assert done.code == 2, done.output
    assert done.denied_writes == [], done.output
    message = json.loads(pod.message(runner))
    assert (message["result"], message["total"], message["passed"], message["failed"]) == ("Error", 3, 2, 1)
    assert message["failedTests"] == [HANG] and message["timedOut"] == [HANG], message
    run_dir = tmp_path / "claim" / message["reportPath"].rsplit("/", 1)[0]
    for name in RUN_ARTIFACTS:
        assert (run_dir / name).stat().st_size > 0, name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["reason"].startswith("stopped by SIGTERM") and HANG in summary["reason"], summary
    assert len(parse((run_dir / "report.html").read_text()).data["tests"]) == 3


def test_the_image_runs_as_the_pod_says():
    """The image alone (runAsNonRoot without runAsUser, an editor's own pod) runs as the pod's uid; HOME
    and the working folder of every container lie in a writable mount of its pod."""
    uid, _, gid = IMAGE.user.partition(":")
    assert (uid, gid) == (str(RUNNER_UID), str(RUNNER_UID))
    for plan in ({}, {"source": {"git": {"url": "https://git.example.com/qa.git"}}}):
        spec = rendered(SMOKE / "plan.yaml", **plan)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            env = sandbox.container_env(container, IMAGE, "pod", {"labels": {}, "annotations": {}})
            writable = [
                m["mountPath"] for m in container["volumeMounts"]
                if not m.get("readOnly") and "emptyDir" in volumes[m["name"]]
            ]  # fmt: skip
            places = {"HOME": env["HOME"], "workingDir": container.get("workingDir", IMAGE.workdir)}
            for what, path in places.items():
                assert any(Path(path).is_relative_to(w) for w in writable), (
                    f"{container['name']}: {what}={path}"
                )
            assert sandbox.container_command(container, IMAGE)[0] == "tep-runner"


def test_the_sandbox_finds_the_writes_a_pod_may_not_make(pod_folder, tmp_path):
    """Bare pytest in the pod's read-only source still passes, but tries to write its cache beside the
    tests, and Python its bytecode: the writes the runner's own run must not attempt."""
    pod, spec = scheduled_pod(rendered(SMOKE / "plan.yaml"), pod_folder, tmp_path / "claim")
    (runner,) = spec["containers"]
    bare = {**runner, "command": ["python", "-m", "pytest", "-p", "xdist", "-n", "3"], "workingDir": "/tests"}
    bare["env"] = [*runner["env"], {"name": "PYTHONDONTWRITEBYTECODE", "value": ""}]
    done = pod.run(bare)
    assert done.code == 0, done.output
    denied = "\n".join(done.denied_writes)
    assert "mkdir(/tests/__pycache__) = EROFS" in denied, denied
    # pytest makes its cache in a temporary folder beside it, then renames it (pytest >= 8.4).
    assert re.search(r"\(/tests/(\.pytest_cache|pytest-cache-files-)", denied), denied
