from pathlib import Path

import pytest

from tep_runner.command import pytest_command
from tep_runner.settings import SettingsError, settings_from_env

BASE = {"TEP_NAMESPACE": "qa", "TEP_PLAN": "smoke", "TEP_TESTS_DIR": "/tests", "TEP_REPORTS_DIR": "/reports"}
OUT, TMP = Path("/reports/qa/smoke/r1"), Path("/tmp/x")


def command_of(bounded: bool = False, **settings: str) -> list[str]:
    return pytest_command(settings_from_env(BASE | settings), OUT, TMP, "python3", bounded=bounded)


def test_full_command_names_no_target_and_no_configuration():
    command = command_of(
        TEP_WORKERS="4", TEP_DIST="loadscope", TEP_RERUNS="2", TEP_PYTEST_ARGS='["-k", "a b"]'
    )
    assert command[:9] == [
        "python3", "-P", "-m", "pytest", "--numprocesses=4", "--dist=loadscope", "--reruns=2", "-k", "a b",
    ]  # fmt: skip
    # The runner's own options after the plan's, where they win (the last -o of a name wins in pytest).
    assert command[9:] == [
        "--junitxml=/reports/qa/smoke/r1/junit.xml", "--override-ini=junit_family=xunit1",
        "--html=/reports/qa/smoke/r1/report.html",
        "--self-contained-html",
        "--override-ini=cache_dir=/tmp/x/cache",
        "--ignore-glob=/tests/..*",
        "-p", "tep_runner.plugin",
        "--tep-record=/tmp/x/record.jsonl", "--tep-stop-file=/tmp/x/stop-cause.txt",
        "--tep-rewrite-cache=/tmp/x/rewritten",
        # pytest's discovery is checked against the source root (tep_runner.plugin).
        "--tep-source-root=/tests", "--tep-outside=/tmp/x/outside.txt",
    ]  # fmt: skip
    # No folder, configuration or rootdir: pytest finds them from its working directory, as bare pytest does;
    # and no option's value of the runner's is a word of its own, which pytest would take for a folder to find
    # them from (only -p's is: a core option, known that early).
    assert [a for a in command[4:] if not a.startswith("-")] == ["a b", "tep_runner.plugin"]


def test_config_file_and_root_dir_are_relative_to_the_source_root():
    command = command_of(
        TEP_SOURCE_ROOT="/workspace/src",
        TEP_TESTS_DIR="/workspace/src/tests",
        TEP_PYTEST_CONFIG_FILE="ci/pytest.ini",
        TEP_PYTEST_ROOT_DIR=".",
    )
    assert "--config-file=/workspace/src/ci/pytest.ini" in command
    assert "--rootdir=/workspace/src" in command
    assert "--ignore-glob=/workspace/src/..*" in command
    assert not [a for a in command if a.startswith("--tep-source-root")]  # both named: nothing to check


def test_bounded_run_has_no_configuration_and_roots_in_the_tests_folder():
    command = command_of(bounded=True)
    assert "--config-file=/dev/null" in command and "--rootdir=/tests" in command
    assert not [a for a in command if a.startswith("--tep-source-root")]


def test_auto_workers_and_no_reruns():
    command = command_of()
    assert command[4:6] == ["--numprocesses=auto", "--junitxml=/reports/qa/smoke/r1/junit.xml"]
    assert not [a for a in command if a.startswith("--reruns")]
    # Without the plan's dist, the suite's own --dist (its addopts) stays in force.
    assert not [a for a in command if a.startswith("--dist")]
    assert command_of(TEP_DIST="load")[4:6] == ["--numprocesses=auto", "--dist=load"]


def test_dist_no_runs_one_worker():
    command = command_of(TEP_DIST="no")
    assert command[4] == "--numprocesses=1"
    assert not [a for a in command if a.startswith("--dist")]


def test_a_shard_names_its_share_to_the_plugin():
    command = command_of(TEP_SHARDS="3", TEP_SHARD_INDEX="1", TEP_RUN_ID="r1")
    assert command[-2:] == ["--tep-shard=1/3", "--tep-split-file=/tmp/x/split.json"]


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


@pytest.mark.parametrize(
    ("dist", "order", "schedule"),
    [
        ("load", "duration", []),
        ("loadfile", "duration", ["--no-loadscope-reorder"]),
        ("worksteal", "duration", []),
        ("load", "collection", []),
    ],
)
def test_recorded_durations_are_handed_to_the_plugin_with_the_scheduling_they_need(dist, order, schedule):
    settings = settings_from_env(BASE | {"TEP_DIST": dist, "TEP_ORDER": order, "TEP_PYTEST_ARGS": '["-x"]'})
    command = pytest_command(settings, OUT, TMP, "python3", bounded=False, durations=True)
    assert command[-2:] == ["--tep-durations=/tmp/x/durations.json", f"--tep-order={order}"]
    # Before the plan's own args, which may set them otherwise.
    assert command[6 : 6 + len(schedule)] == schedule and command[6 + len(schedule)] == "-x"
    without = pytest_command(settings, OUT, TMP, "python3", bounded=False)
    assert not [
        a for a in without if "durations" in a or a in ("--maxschedchunk=1", "--no-loadscope-reorder")
    ]
