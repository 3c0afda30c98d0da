from pathlib import Path

import pytest

from tep_runner.command import pytest_command
from tep_runner.settings import SettingsError, settings_from_env

BASE = {"TEP_NAMESPACE": "qa", "TEP_PLAN": "smoke", "TEP_TESTS_DIR": "/tests", "TEP_REPORTS_DIR": "/reports"}
OUT, TMP = Path("/reports/qa/smoke/r1"), Path("/tmp/x")


def has(command: list[str], *pair: str) -> bool:
    return any(command[i : i + len(pair)] == list(pair) for i in range(len(command)))


def test_full_command_names_no_target_and_no_configuration():
    settings = settings_from_env(
        BASE
        | {"TEP_WORKERS": "4", "TEP_DIST": "loadscope", "TEP_RERUNS": "2", "TEP_PYTEST_ARGS": '["-k", "a b"]'}
    )
    command = pytest_command(settings, OUT, TMP, "python3", bounded=False)
    assert command[:11] == [
        "python3", "-m", "pytest", "-n", "4", "--dist", "loadscope", "--reruns", "2", "-k", "a b",
    ]  # fmt: skip
    # No folder, ini file or rootdir: pytest finds them from its working directory, as bare pytest does.
    assert (
        "-c" not in command
        and "--rootdir" not in command
        and not any(a.startswith("/tests/") for a in command[:11])
    )
    for pair in (
        ["--junitxml", "/reports/qa/smoke/r1/junit.xml"],
        ["--html", "/reports/qa/smoke/r1/report.html"],
        ["-o", "cache_dir=/tmp/x/cache"],
        ["--ignore-glob", "/tests/..*"],
        ["-p", "tep_runner.plugin"],
        ["--tep-record", "/tmp/x/record.json"],
    ):
        assert has(command, *pair), pair
    assert "--self-contained-html" in command and "--tep-shard" not in command
    # pytest's discovery is checked against the source root (tep_runner.plugin).
    assert has(command, "--tep-source-root", "/tests", "--tep-outside", "/tmp/x/outside.txt")
    # The runner's own options after the plan's: the last -o of a name wins in pytest.
    assert command.index("cache_dir=/tmp/x/cache") > command.index("a b")


def test_config_file_and_root_dir_are_relative_to_the_source_root():
    settings = settings_from_env(
        BASE
        | {
            "TEP_SOURCE_ROOT": "/workspace/src",
            "TEP_TESTS_DIR": "/workspace/src/tests",
            "TEP_PYTEST_CONFIG_FILE": "ci/pytest.ini",
            "TEP_PYTEST_ROOT_DIR": ".",
        }
    )
    command = pytest_command(settings, OUT, TMP, "python3", bounded=False)
    assert has(command, "-c", "/workspace/src/ci/pytest.ini")
    assert has(command, "--rootdir", "/workspace/src")
    assert has(command, "--ignore-glob", "/workspace/src/..*")


def test_bounded_run_has_no_configuration_and_roots_in_the_tests_folder():
    command = pytest_command(settings_from_env(BASE), OUT, TMP, "python3", bounded=True)
    assert has(command, "-c", "/dev/null") and has(command, "--rootdir", "/tests")
    assert "--tep-source-root" not in command


def test_auto_workers_and_no_reruns():
    command = pytest_command(settings_from_env(BASE), OUT, TMP, "python3", bounded=False)
    assert command[3:7] == ["-n", "auto", "--dist", "load"]
    assert "--reruns" not in command


def test_dist_no_runs_one_worker():
    command = pytest_command(settings_from_env(BASE | {"TEP_DIST": "no"}), OUT, TMP, "python3", bounded=False)
    assert command[3:5] == ["-n", "1"]
    assert "--dist" not in command


def test_a_shard_names_its_share_to_the_plugin():
    settings = settings_from_env(BASE | {"TEP_SHARDS": "3", "TEP_SHARD_INDEX": "1", "TEP_RUN_ID": "r1"})
    command = pytest_command(settings, OUT, TMP, "python3", bounded=False)
    assert has(command, "--tep-shard", "1/3", "--tep-split-file", "/tmp/x/split.json")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ('["--junitxml=x.xml"]', "is set by the runner"),
        ('["--html", "x.html"]', "is set by the runner"),
        ('["-c", "other.ini"]', "use TEP_PYTEST_CONFIG_FILE"),
        ('["--config-file=other.ini"]', "use TEP_PYTEST_CONFIG_FILE"),
        ('["--rootdir", "/"]', "use TEP_PYTEST_ROOT_DIR"),
        ('["-p", "no:html"]', "would disable"),
        ('["-pno:xdist"]', "would disable"),
    ],
)
def test_options_the_runner_owns_are_refused_by_name(args, named):
    with pytest.raises(SettingsError, match=f"^TEP_PYTEST_ARGS: .*{named}"):
        settings_from_env(BASE | {"TEP_PYTEST_ARGS": args})
