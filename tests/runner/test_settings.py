import json
from pathlib import Path

import pytest

from tep_runner.settings import Settings, SettingsError, settings_from_env

BASE = {"TEP_NAMESPACE": "qa", "TEP_PLAN": "smoke", "TEP_TESTS_DIR": "/tests", "TEP_REPORTS_DIR": "/reports"}


def test_full_environment():
    settings = settings_from_env(
        BASE
        | {
            "TEP_JOB_NAME": "smoke-29012345",
            "TEP_WORKERS": "4",
            "TEP_DIST": "loadfile",
            "TEP_RERUNS": "2",
            "TEP_PYTEST_ARGS": json.dumps(["-k", "not slow"]),
            "TEP_KEEP_LAST": "5",
            "TEP_MAX_AGE_DAYS": "3",
            "TEP_SHARDS": "3",
            "TEP_SHARD_INDEX": "2",
            "TEP_TERMINATION_LOG": "/dev/termination-log",
            "TEP_SOURCE_ROOT": "/workspace/src",
            "TEP_TESTS_DIR": "/workspace/src/tests",
            "TEP_PYTEST_CONFIG_FILE": "ci/pytest.toml",
            "TEP_PYTEST_ROOT_DIR": "src",
        }
    )
    assert settings == Settings(
        namespace="qa",
        plan="smoke",
        source_root=Path("/workspace/src"),
        tests_dir=Path("/workspace/src/tests"),
        config_file="ci/pytest.toml",
        root_dir="src",
        reports_dir=Path("/reports"),
        job_name="smoke-29012345",
        run_id="",
        workers=4,
        dist="loadfile",
        reruns=2,
        pytest_args=("-k", "not slow"),
        keep_last=5,
        max_age_days=3,
        shards=3,
        shard_index=2,
        termination_log=Path("/dev/termination-log"),
    )


def test_defaults_follow_the_design():
    settings = settings_from_env(BASE)
    assert (settings.workers, settings.dist, settings.reruns, settings.pytest_args) == ("auto", "", 0, ())
    assert (settings.keep_last, settings.max_age_days, settings.shards, settings.shard_index) == (20, 7, 1, 0)
    assert settings.termination_log is None
    # Without TEP_SOURCE_ROOT the tests folder is the source root; pytest finds its own configuration.
    assert (settings.source_root, settings.config_file, settings.root_dir) == (Path("/tests"), "", "")


def test_shard_index_from_indexed_job():
    env = BASE | {"TEP_SHARDS": "2", "JOB_COMPLETION_INDEX": "1", "TEP_RUN_ID": "manual-1"}
    assert settings_from_env(env).shard_index == 1


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"TEP_NAMESPACE": ""}, "TEP_NAMESPACE"),
        ({"TEP_PLAN": "../etc"}, "TEP_PLAN"),
        ({"TEP_TESTS_DIR": ""}, "TEP_TESTS_DIR"),
        ({"TEP_REPORTS_DIR": ""}, "TEP_REPORTS_DIR"),
        ({"TEP_RUN_ID": "a/b"}, "TEP_RUN_ID"),
        ({"TEP_RUN_ID": "latest"}, "TEP_RUN_ID"),
        ({"TEP_WORKERS": "0"}, "TEP_WORKERS"),
        ({"TEP_WORKERS": "many"}, "TEP_WORKERS"),
        ({"TEP_DIST": "each"}, "TEP_DIST"),
        ({"TEP_RERUNS": "-1"}, "TEP_RERUNS"),
        ({"TEP_PYTEST_ARGS": "-k slow"}, "TEP_PYTEST_ARGS"),
        ({"TEP_PYTEST_ARGS": '{"k": 1}'}, "TEP_PYTEST_ARGS"),
        ({"TEP_PYTEST_ARGS": '["-x", 3]'}, "TEP_PYTEST_ARGS"),
        ({"TEP_PYTEST_ARGS": '["--junitxml=/tmp/x.xml"]'}, "TEP_PYTEST_ARGS"),
        ({"TEP_PYTEST_ARGS": '["--rootdir=/"]'}, "TEP_PYTEST_ARGS"),
        ({"TEP_PYTEST_CONFIG_FILE": "/etc/pytest.ini"}, "TEP_PYTEST_CONFIG_FILE"),
        ({"TEP_PYTEST_CONFIG_FILE": "../pytest.ini"}, "TEP_PYTEST_CONFIG_FILE"),
        ({"TEP_PYTEST_ROOT_DIR": "a/../../b"}, "TEP_PYTEST_ROOT_DIR"),
        ({"TEP_KEEP_LAST": "0"}, "TEP_KEEP_LAST"),
        ({"TEP_MAX_AGE_DAYS": "1.5"}, "TEP_MAX_AGE_DAYS"),
        ({"TEP_SHARDS": "0"}, "TEP_SHARDS"),
        ({"TEP_SHARDS": "2", "TEP_RUN_ID": "r1"}, "TEP_SHARD_INDEX"),
        ({"TEP_SHARDS": "2", "TEP_RUN_ID": "r1", "TEP_SHARD_INDEX": "2"}, "TEP_SHARD_INDEX"),
        ({"TEP_SHARDS": "2", "TEP_RUN_ID": "r1", "JOB_COMPLETION_INDEX": "x"}, "JOB_COMPLETION_INDEX"),
        ({"TEP_SHARDS": "2", "TEP_SHARD_INDEX": "0", "TEP_JOB_NAME": "smoke-manual"}, "TEP_SHARDS"),
    ],
)
def test_each_error_names_its_variable(change, variable):
    with pytest.raises(SettingsError) as error:
        settings_from_env(BASE | change)
    assert str(error.value).startswith(f"{variable}:")
