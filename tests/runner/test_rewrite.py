"""The run's pytest processes share one assert rewrite per test module (tep_runner.rewrite)."""

import os
import subprocess
from pathlib import Path

from _pytest.assertion import rewrite

from tests.runner.conftest import BARE_PYTEST, final_line

FAILING = "def test_a():\n    x = 1\n    assert x == 2\n"


def pytest_with_shared_rewrites(suite: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    """pytest in `suite`, writing no bytecode (as in a run), sharing rewrites in `folder`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | {
        "PYTHONDONTWRITEBYTECODE": "1"
    }
    command = [
        BARE_PYTEST,
        "-p",
        "no:cacheprovider",
        "-p",
        "tep_runner.plugin",
        f"--tep-rewrite-cache={folder}",
    ]
    return subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True, timeout=120)


def test_a_rewrite_one_process_made_is_what_the_next_one_runs(tmp_path):
    suite, folder = tmp_path / "suite", tmp_path / "rewritten"
    suite.mkdir()
    test_file = suite / "test_a.py"
    test_file.write_text(FAILING)
    first = pytest_with_shared_rewrites(suite, folder)
    assert final_line(first.stdout) == {"failed": 1}, first.stdout
    assert "assert 1 == 2" in first.stdout  # rewritten: pytest's introspection of the assert
    (pyc,) = folder.glob("*.pyc")
    assert not list(suite.rglob("*.pyc"))  # nothing written beside the tests
    # Plant another module's code under the same source hash: the next process runs what it finds there.
    source_hash = rewrite.importlib.util.source_hash(test_file.read_bytes())
    planted = compile("def test_a():\n    pass\n", str(test_file), "exec")
    with pyc.open("wb") as fp:
        rewrite._write_pyc_fp(fp, source_hash, planted)
    second = pytest_with_shared_rewrites(suite, folder)
    assert final_line(second.stdout) == {"passed": 1}, second.stdout
    # A changed source does not match the hash: rewritten again.
    test_file.write_text(FAILING.replace("x == 2", "x == 3"))
    third = pytest_with_shared_rewrites(suite, folder)
    assert final_line(third.stdout) == {"failed": 1} and "assert 1 == 3" in third.stdout, third.stdout


def test_workers_sharing_rewrites_judge_as_bare_pytest(write_suite, bare_pytest, run_runner):
    files = {f"test_m{i}.py": FAILING + "\n\ndef test_b():\n    assert [1, 2] == [1, 2]\n" for i in range(6)}
    suite = write_suite("suite", files)
    bare = bare_pytest(suite)
    assert bare.final == {"failed": 6, "passed": 6}
    result = run_runner(suite, TEP_WORKERS="3")
    assert result.summary()["failed"] == 6 and result.summary()["passed"] == 6, result.output
    junit = (result.run_dir / "junit.xml").read_text()
    assert junit.count("assert 1 == 2") >= 6  # every worker's failures introspected: the rewrite ran for all
