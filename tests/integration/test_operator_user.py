"""`tep operator` as a numeric user without a passwd entry, as the chart's pod runs it (uid 10001).

kopf's default identity is `getpass.getuser()`, which raises for such a user; the operator
must give kopf its own identity and come up (issue 8, item 1).
"""

import os
import pathlib
import pwd
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from tep_operator.config import POD_NAME_ENV
from tests.emulator import Emulator

# getpass.getuser() reads these before it asks the passwd database; a pod has none of them.
USER_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")
STARTUP_SECONDS = 30

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")


def unused_uid() -> int:
    known = {entry.pw_uid for entry in pwd.getpwall()}
    return next(uid for uid in range(10001, 65000) if uid not in known)


def python_for(uid: int) -> list[str]:
    """`[*python_for(uid), code, *args]` runs Python `code` with `sys.argv[1:] == args` as
    `uid`, in this environment: with this interpreter, else (it may live under root's 0700
    home, as pyenv's does) with the system's interpreter of the same version and this
    environment's site-packages, which the uid can read."""
    run_code = "import sys; exec(sys.argv.pop(1))"
    if run_as(uid, [sys.executable, "-c", "pass"]).returncode == 0:
        return [sys.executable, "-c", run_code]
    system = pathlib.Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.is_file():
        pytest.skip(f"uid {uid} can run neither {sys.executable} nor {system}")
    site_packages = sysconfig.get_paths()["purelib"]
    python = [str(system), "-c", f"import site; site.addsitedir({site_packages!r}); {run_code}"]
    # A checkout in a folder only root may enter (`mktemp -d` makes 0700 ones) hides the venv.
    imports = run_as(uid, [*python, "import kopf, tep_operator"])
    if imports.returncode != 0:
        pytest.skip(f"uid {uid} cannot read this checkout's environment: {imports.stderr.strip()[-200:]}")
    return python


def run_as(uid: int, command: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command,
            user=uid,
            group=uid,
            extra_groups=[],
            env=child_env(),
            capture_output=True,
            text=True,
            cwd="/",
        )
    except PermissionError as exc:
        return subprocess.CompletedProcess(command, 126, "", str(exc))


@pytest.fixture()
def readable_kubeconfig(kube: Emulator) -> Iterator[pathlib.Path]:
    """The emulator's kubeconfig where any uid can read it (pytest's tmp_path is root's only)."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="tep-uid-"))
    folder.chmod(0o755)
    path = kube.kubeconfig(folder / "kubeconfig")
    path.chmod(0o644)
    yield path
    path.unlink()
    folder.rmdir()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in USER_VARIABLES and not k.startswith("TEP_")}
    env.update(HOME="/nonexistent", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status)
    except (urllib.error.URLError, OSError):
        return None


@pytest.mark.parametrize("pod_name", ["tep-operator-7d9f8-abcde", None], ids=["pod-name", "hostname"])
def test_operator_starts_as_a_uid_without_passwd_entry(
    readable_kubeconfig: pathlib.Path, free_ports: Callable[[int], list[int]], pod_name: str | None
) -> None:
    uid = unused_uid()
    python = python_for(uid)
    # The premise: kopf's default would die for this user.
    probe = run_as(uid, [*python, "import getpass; getpass.getuser()"])
    assert probe.returncode != 0 and "uid not found" in probe.stderr, probe.stderr

    (liveness,) = free_ports(1)
    extra = {POD_NAME_ENV: pod_name} if pod_name else {}
    command = [*python, "import runpy; runpy.run_module('tep_operator', run_name='__main__')"]
    command += ["--namespace", "qa", "--kubeconfig"]
    command += [str(readable_kubeconfig), "--liveness-port", str(liveness), "--metrics-port", "0"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command,
            user=uid,
            group=uid,
            extra_groups=[],
            env=child_env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            answer = None
            while answer != 200 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
                answer = healthz(liveness)
        finally:
            proc.terminate()
            code = proc.wait(20)
            log.seek(0)
            output = log.read().decode(errors="replace")
    assert answer == 200, f"/healthz never answered 200 (uid {uid}); operator output:\n{output}"
    assert code == 0, f"the operator did not stop cleanly on SIGTERM ({code}):\n{output}"
    assert "Traceback" not in output and "KeyError" not in output, output
