"""A reports volume made by real runner runs, and a real `tep serve` over it (a separate process).

Plans, all in namespace qa:
- web: three runs of one suite (reruns=1, keepLast=2, so the first run's folder is gone): test_flaky
  fails once then passes (a marker file), so it is flaky in the first run; test_broken always fails;
  test_regress passes in the first two runs and fails in the third (a new failure); test_skip is skipped.
- sharded: one run of two shards (TEP_SHARDS=2, TEP_RUN_ID), two runner processes at once.
- broken: an Error run (a collection error).
"""

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import tep_runner

TEP = Path(sys.executable).with_name("tep")
WEB_SUITE = {
    "test_web.py": """
        import os
        from pathlib import Path

        import pytest

        HERE = Path(__file__).parent

        def test_ok():
            pass

        def test_broken():
            assert 1 == 2, "<b>always</b> broken"

        def test_flaky():
            marker = HERE / "flaky-marker"
            if not marker.exists():
                marker.write_text("seen")
                raise AssertionError("fails on the first attempt only")

        def test_regress():
            assert not (HERE / "regress-on").exists(), "broke in the third run"

        @pytest.mark.skip(reason="not ready")
        def test_skip():
            pass

    """,
}
SHARDED_SUITE = {
    f"test_s{i}.py": f"def test_a{i}():\n    pass\n\ndef test_b{i}():\n    pass\n" for i in range(3)
}
BROKEN_SUITE = {"test_ok.py": "def test_ok():\n    pass\n", "test_bad.py": "import no_such_module\n"}


@dataclass
class Volume:
    root: Path
    web_runs: list[str]  # oldest first
    sharded_run: str
    broken_run: str


def _write(folder: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def _env(root: Path, tests: Path, plan: str, **settings: str) -> dict[str, str]:
    return {
        "TEP_NAMESPACE": "qa",
        "TEP_PLAN": plan,
        "TEP_TESTS_DIR": str(tests),
        "TEP_REPORTS_DIR": str(root),
        "TEP_WORKERS": "2",
        "TEP_MAX_AGE_DAYS": "3650",  # the run ids of scheduled Job names below are from 2025
        **settings,
    }


def _run(env: dict[str, str]) -> str:
    out = io.StringIO()
    tep_runner.run(env, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="session")
def volume(tmp_path_factory) -> Volume:
    base = tmp_path_factory.mktemp("volume")
    root = base / "reports"
    with pytest.MonkeyPatch.context() as mp:
        # The suites run in child processes that inherit os.environ; this test run's own must not leak in.
        for name in (
            "PYTEST_XDIST_TESTRUNUID",
            "PYTEST_XDIST_WORKER",
            "PYTEST_XDIST_WORKER_COUNT",
            "PYTEST_ADDOPTS",
        ):
            mp.delenv(name, raising=False)
        mp.setenv("PYTHONWARNINGS", "ignore")
        web = _write(base / "web", WEB_SUITE)
        web_runs = []
        for i in range(3):
            if i == 2:
                (web / "regress-on").write_text("on")
            # keepLast 2: the third run's retention removes the first run's folder; its history stays.
            _run(
                _env(root, web, "web", TEP_RERUNS="1", TEP_KEEP_LAST="2", TEP_JOB_NAME=f"web-{29400000 + i}")
            )
            web_runs.append(os.readlink(root / "qa" / "web" / "latest"))
        sharded = _write(base / "sharded", SHARDED_SUITE)
        run_id = "20261121T194200Z-mshard01"
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tep_runner"],
                env=os.environ
                | _env(
                    root,
                    sharded,
                    "sharded",
                    TEP_SHARDS="2",
                    TEP_SHARD_INDEX=str(i),
                    TEP_RUN_ID=run_id,
                    TEP_JOB_NAME="sharded-m1",
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            for i in range(2)
        ]
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
        broken = _write(base / "broken", BROKEN_SUITE)
        _run(_env(root, broken, "broken"))
        broken_run = os.readlink(root / "qa" / "broken" / "latest")
    return Volume(root, web_runs, run_id, broken_run)


@dataclass
class Server:
    port: int
    root: Path

    def get(self, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """One request with `path` sent exactly as given (no client-side normalisation)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def json(self, path: str):
        status, _, body = self.get(path)
        assert status == 200, (path, body[:300])
        return json.loads(body)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path):
    port = free_port()
    proc = subprocess.Popen(
        [str(TEP), "serve", "--reports", str(root), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(port, root)
    deadline = time.monotonic() + 30
    while True:
        try:
            if server.get("/healthz")[0] == 200:
                return proc, server
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"tep serve did not start: {proc.communicate()[0]}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def server(volume):
    proc, server = start_server(volume.root)
    yield server
    proc.terminate()
    proc.wait(timeout=10)
