from pathlib import Path

from tep_runner.command import collect_command, pytest_command
from tep_runner.settings import settings_from_env

BASE = {"TEP_NAMESPACE": "qa", "TEP_PLAN": "smoke", "TEP_TESTS_DIR": "/tests", "TEP_REPORTS_DIR": "/reports"}
OUT, CACHE = Path("/reports/qa/smoke/r1"), Path("/tmp/x/cache")


def test_full_command_with_plan_args_last():
    settings = settings_from_env(
        BASE
        | {"TEP_WORKERS": "4", "TEP_DIST": "loadscope", "TEP_RERUNS": "2", "TEP_PYTEST_ARGS": '["-k", "a b"]'}
    )
    command = pytest_command(settings, OUT, CACHE, "python3", None, "/dev/null")
    assert command[:11] == [
        "python3", "-m", "pytest", "/tests", "-n", "4", "--dist", "loadscope", "--reruns", "2", "--junitxml",
    ]  # fmt: skip
    assert command[-2:] == ["-k", "a b"]  # one element each: never split by a shell
    for pair in (
        ["--junitxml", "/reports/qa/smoke/r1/junit.xml"],
        ["--html", "/reports/qa/smoke/r1/report.html"],
        ["-o", "junit_family=xunit1"],
        ["-o", "cache_dir=/tmp/x/cache"],
        ["--rootdir", "/tests"],
        ["--ignore-glob", "/tests/..*"],
        ["-p", "tep_runner.plugin"],
    ):
        assert any(command[i : i + 2] == pair for i in range(len(command))), pair
    assert "--self-contained-html" in command


def test_auto_workers_and_no_reruns():
    command = pytest_command(settings_from_env(BASE), OUT, CACHE, "python3", None, "/dev/null")
    assert command[3:8] == ["/tests", "-n", "auto", "--dist", "load"]
    assert "--reruns" not in command


def test_dist_no_keeps_xdist_loaded_without_workers():
    command = pytest_command(
        settings_from_env(BASE | {"TEP_DIST": "no"}), OUT, CACHE, "python3", None, "/dev/null"
    )
    assert command[3:6] == ["/tests", "-n", "0"]
    assert "--dist" not in command


def test_shard_runs_its_ids_from_a_file():
    command = pytest_command(
        settings_from_env(BASE), OUT, CACHE, "python3", Path("/tmp/x/ids.txt"), "/dev/null"
    )
    assert command[3] == "@/tmp/x/ids.txt"


def test_collect_command_applies_plan_selection_without_workers():
    settings = settings_from_env(BASE | {"TEP_PYTEST_ARGS": '["-m", "smoke", "-n", "4"]'})
    command = collect_command(settings, CACHE, "python3", Path("/tmp/x/ids"), "/dev/null")
    assert "--collect-only" in command
    assert command[-6:] == ["-m", "smoke", "-n", "4", "-n", "0"]
    assert command[command.index("--tep-nodeids-file") + 1] == "/tmp/x/ids"
