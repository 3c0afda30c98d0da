"""The suite's own pytest configuration decides (issue 8, item 4): for each layout, bare `pytest` run where
the suite's owners run it and the runner collect the same node ids and judge each the same way."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.runner.conftest import OUTCOMES_PLUGIN, outcome_env

PYTEST_VERSION = tuple(int(part) for part in pytest.__version__.split(".")[:2])

# One suite for every layout; what its configuration does is visible in the outcomes.
SUITE = {
    "test_a.py": """
        import warnings

        import pytest

        def test_ok():
            pass

        @pytest.mark.slow
        def test_slow():  # deselected by addopts -m "not slow"
            raise AssertionError("ran although the suite's addopts deselect it")

        def test_warns():  # failed under filterwarnings = error, passed otherwise
            warnings.warn("deprecated", UserWarning)

        @pytest.mark.xfail
        def test_unexpectedly_passes():  # failed under xfail_strict, xpassed otherwise
            pass

        @pytest.mark.xfail
        def test_known_bug():
            raise AssertionError

        def test_later():
            pytest.skip("later")
    """,
    "test_marker.py": """
        import pytest

        @pytest.mark.undeclared  # a collection error under --strict-markers
        def test_marked():
            pass
    """,
}
OUTSIDE = {"test_outside.py": "def test_outside():\n    raise AssertionError('outside testpaths')\n"}

INI = """\
    testpaths = {testpaths}
    addopts = -m "not slow" --strict-markers --continue-on-collection-errors
    filterwarnings = error
    xfail_strict = true
    markers =
        slow: slow tests
"""
TOML_INI_OPTIONS = """\
    testpaths = ["{testpaths}"]
    addopts = '-m "not slow" --strict-markers --continue-on-collection-errors'
    filterwarnings = ["error"]
    xfail_strict = true
    markers = ["slow: slow tests"]
"""
TOML_NATIVE = """\
    testpaths = ["{testpaths}"]
    addopts = ["-m", "not slow", "--strict-markers", "--continue-on-collection-errors"]
    filterwarnings = ["error"]
    xfail_strict = true
    markers = ["slow: slow tests"]
"""
INI, TOML_INI_OPTIONS, TOML_NATIVE = (textwrap.dedent(text) for text in (INI, TOML_INI_OPTIONS, TOML_NATIVE))
LAYOUTS = {
    "pytest.ini": "[pytest]\n" + INI,
    "pyproject.toml": "[project]\nname = 'suite'\n\n[tool.pytest.ini_options]\n" + TOML_INI_OPTIONS,
    "tox.ini": "[tox]\nenvlist = py\n\n[pytest]\n" + INI,
    "setup.cfg": "[metadata]\nname = suite\n\n[tool:pytest]\n" + INI,
    "pytest.toml": "[pytest]\n" + TOML_NATIVE,
}
# What the configuration above makes of the suite, whatever its format: bare pytest must agree (it is the
# reference), and this pins that the configuration was read at all.
EXPECTED = {
    "{tests}/test_a.py::test_ok": ["passed"],
    "{tests}/test_a.py::test_warns": ["failed"],
    "{tests}/test_a.py::test_unexpectedly_passes": ["failed"],
    "{tests}/test_a.py::test_known_bug": ["xfailed"],
    "{tests}/test_a.py::test_later": ["skipped"],
    "{tests}/test_marker.py": ["error"],
}


def needs_toml(name: str) -> None:
    if name == "pytest.toml" and PYTEST_VERSION < (9, 0):
        pytest.skip(f"pytest {pytest.__version__} does not read pytest.toml (pytest 9 does)")


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def runner_outcomes(run_runner, tmp_path, tests_dir: Path, *args: str, **settings: str):
    """The runner's run with the plan's pytest `args`, and each test's outcome in it."""
    result = run_runner(
        tests_dir,
        TEP_PYTEST_ARGS=json.dumps([*OUTCOMES_PLUGIN, *args]),
        **outcome_env(tmp_path, "runner"),
        **settings,
    )
    return result, json.loads((tmp_path / "outcomes-runner.json").read_text())


def assert_same(bare, runner, runner_outcomes_):
    assert runner_outcomes_ == bare.outcomes, runner.output
    summary = runner.summary()
    assert {key: summary[key] for key in bare.final} == bare.final, runner.output
    # The counts pytest does not print are zero in the summary, not missing.
    assert all(
        summary[key] == 0
        for key in ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")
        if key not in bare.final
    )


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_configuration_at_the_root_of_the_source(name, tmp_path, write_suite, bare_pytest, run_runner):
    # The usual repository: configuration at the root, tests in tests/, other test files outside testpaths.
    needs_toml(name)
    root = tmp_path / "repo"
    write(root, {name: LAYOUTS[name].format(testpaths="tests")})
    write(root, {f"tests/{path}": text for path, text in SUITE.items()})
    write(root, {f"scripts/{path}": text for path, text in OUTSIDE.items()})
    bare = bare_pytest(root)
    assert bare.outcomes == {k.format(tests="tests"): v for k, v in EXPECTED.items()}, bare.output
    runner, outcomes = runner_outcomes(run_runner, tmp_path, root)
    assert_same(bare, runner, outcomes)
    assert (runner.code, runner.message["result"]) == (2, "Error")  # the marker's collection error
    assert runner.summary()["configFile"] == str(root / name)


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_configuration_in_the_tests_folder_of_a_git_checkout(name, tmp_path, bare_pytest, run_runner):
    # source.git.path: tests -- the configuration is in the folder pytest runs in, the checkout above it.
    needs_toml(name)
    root = tmp_path / "checkout"
    write(root, {f"tests/{name}": LAYOUTS[name].format(testpaths="unit")})
    write(root, {f"tests/unit/{path}": text for path, text in SUITE.items()})
    write(root, {f"tests/integration/{path}": text for path, text in OUTSIDE.items()})
    bare = bare_pytest(root / "tests")
    assert bare.outcomes == {k.format(tests="unit"): v for k, v in EXPECTED.items()}, bare.output
    runner, outcomes = runner_outcomes(run_runner, tmp_path, root / "tests", TEP_SOURCE_ROOT=str(root))
    assert_same(bare, runner, outcomes)


def test_a_file_without_a_pytest_section_is_passed_over_as_pytest_does(tmp_path, bare_pytest, run_runner):
    # In the folder pytest runs in: a setup.cfg of other tools and a pyproject.toml without [tool.pytest];
    # the configuration is in the checkout's root. pytest's own rules pick the root's pytest.ini.
    root = tmp_path / "checkout"
    write(root, {"pytest.ini": "[pytest]\n" + INI.format(testpaths="unit")})
    write(root, {"tests/setup.cfg": "[flake8]\nmax-line-length = 100\n"})
    write(root, {f"tests/{path}": text for path, text in SUITE.items()})
    bare = bare_pytest(root / "tests")
    assert bare.outcomes == {k.format(tests="tests"): v for k, v in EXPECTED.items()}, bare.output
    runner, outcomes = runner_outcomes(run_runner, tmp_path, root / "tests", TEP_SOURCE_ROOT=str(root))
    assert_same(bare, runner, outcomes)
    assert runner.summary()["rootdir"] == str(root)


def test_pyproject_without_a_pytest_table_beside_tox_ini(tmp_path, bare_pytest, run_runner):
    root = tmp_path / "repo"
    write(
        root,
        {
            "pyproject.toml": "[project]\nname = 'suite'\n",
            "tox.ini": "[pytest]\n" + INI.format(testpaths="tests"),
        },
    )
    write(root, {f"tests/{path}": text for path, text in SUITE.items()})
    bare = bare_pytest(root)
    runner, outcomes = runner_outcomes(run_runner, tmp_path, root)
    assert_same(bare, runner, outcomes)
    assert runner.summary()["configFile"] == str(root / "tox.ini")


def test_config_file_and_root_dir_of_the_plan(tmp_path, bare_pytest, run_runner):
    # A configuration pytest would not find by itself (ci/pytest.ini), named by spec.pytest.configFile.
    root = tmp_path / "repo"
    write(root, {"ci/pytest.ini": "[pytest]\n" + INI.format(testpaths="tests")})
    write(root, {f"tests/{path}": text for path, text in SUITE.items()})
    bare = bare_pytest(root, "-c", "ci/pytest.ini", "--rootdir", ".")
    assert bare.outcomes == {k.format(tests="tests"): v for k, v in EXPECTED.items()}, bare.output
    runner, outcomes = runner_outcomes(
        run_runner, tmp_path, root, TEP_PYTEST_CONFIG_FILE="ci/pytest.ini", TEP_PYTEST_ROOT_DIR="."
    )
    assert_same(bare, runner, outcomes)


def test_configuration_above_the_source_root_is_not_the_suites(tmp_path, bare_pytest, run_runner):
    # A laptop: the tests folder (a ConfigMap's source) inside an unrelated project. In a pod nothing lies
    # above the source, so the runner ignores it -- as bare pytest does with no configuration at all.
    write(tmp_path, {"pyproject.toml": '[tool.pytest.ini_options]\naddopts = "--no-such-flag"\n'})
    suite = tmp_path / "suite"
    write(suite, SUITE)
    bare = bare_pytest(suite, "-c", "/dev/null")
    runner, outcomes = runner_outcomes(run_runner, tmp_path, suite)
    assert f"ignoring {tmp_path / 'pyproject.toml'}" in runner.output
    assert_same(bare, runner, outcomes)
    assert outcomes["test_a.py::test_warns"] == ["passed"]  # no filterwarnings = error here
    assert runner.summary()["configFile"] == ""


def test_shards_split_what_pytest_collects_from_the_root(tmp_path, runner_env, bare_pytest):
    # Node ids relative to a rootdir above the folder pytest runs in: each shard runs its share, together all.
    root = tmp_path / "checkout"
    write(root, {"pytest.ini": "[pytest]\n" + INI.format(testpaths="unit")})
    write(root, {f"tests/{path}": text for path, text in SUITE.items()})
    bare = bare_pytest(root / "tests")
    shards = []
    for index in range(2):
        env = runner_env(
            root / "tests", TEP_SOURCE_ROOT=str(root), TEP_SHARDS="2", TEP_SHARD_INDEX=str(index),
            TEP_RUN_ID="20990101T000000Z-s", TEP_PYTEST_ARGS=json.dumps(OUTCOMES_PLUGIN),
            **outcome_env(tmp_path, f"shard{index}"),
        )  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "tep_runner"], env=os.environ | env, capture_output=True, check=False
        )
        shards.append(json.loads((tmp_path / f"outcomes-shard{index}.json").read_text()))
    assert not set(shards[0]) & {
        k for k in shards[1] if "::" in k
    }  # tests run once; a collection error in each
    merged = {**shards[0], **shards[1]}
    assert merged == bare.outcomes
    run = json.loads((tmp_path / "reports/qa/demo/20990101T000000Z-s/summary.json").read_text())
    tests_only = {k: v for k, v in bare.final.items() if k != "errors"}
    assert {k: run[k] for k in tests_only} == tests_only


def test_a_source_root_reached_through_a_link_keeps_its_configuration(tmp_path, bare_pytest, run_runner):
    # pytest starts from the real working directory; the runner may be given the path through a link.
    root = tmp_path / "repo"
    write(root, {"pytest.ini": "[pytest]\n" + INI.format(testpaths="tests")})
    write(root, {f"tests/{path}": text for path, text in SUITE.items()})
    (tmp_path / "link").symlink_to(root)
    bare = bare_pytest(root)
    runner, outcomes = runner_outcomes(run_runner, tmp_path, tmp_path / "link")
    assert "ignoring" not in runner.output
    assert_same(bare, runner, outcomes)


def test_the_source_is_importable_as_bare_pytest_makes_it(tmp_path, bare_pytest, run_runner):
    # A flat layout whose package is not installed: bare `pytest` (a console script) does not put the folder
    # it runs in on sys.path, so tests/ cannot import the package at the root -- unless the configuration's
    # `pythonpath` says so, as it does for src/.
    root = tmp_path / "repo"
    write(root, {
        "pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\npythonpath = ['src']\n",
        "flat_pkg/__init__.py": "X = 1\n",
        "src/src_pkg/__init__.py": "Y = 2\n",
        "tests/test_flat.py": "import flat_pkg\n\n\ndef test_flat():\n    assert flat_pkg.X == 1\n",
        "tests/test_src.py": "import src_pkg\n\n\ndef test_src():\n    assert src_pkg.Y == 2\n",
    })  # fmt: skip
    bare = bare_pytest(root, "--continue-on-collection-errors")
    assert bare.outcomes == {"tests/test_flat.py": ["error"], "tests/test_src.py::test_src": ["passed"]}
    runner, outcomes = runner_outcomes(run_runner, tmp_path, root, "--continue-on-collection-errors")
    assert_same(bare, runner, outcomes)


def test_the_suites_own_dist_decides_unless_the_plan_sets_one(tmp_path, bare_pytest, run_runner):
    # The suite's addopts ask for loadfile: the tests of a file share one resource and must run one at a
    # time, on one worker. Under xdist's load they would run side by side and fail.
    root = tmp_path / "repo"
    write(root, {
        "pytest.ini": "[pytest]\naddopts = --dist loadfile\n",
        "test_db.py": """
            import os
            import time

            import pytest

            @pytest.fixture
            def database(tmp_path_factory):
                busy = tmp_path_factory.getbasetemp().parent / "database-in-use"  # shared by the workers
                os.mkdir(busy)  # fails while another test holds it
                time.sleep(0.5)
                yield
                os.rmdir(busy)

            @pytest.mark.parametrize("n", range(4))
            def test_uses_the_database(database, n):
                pass
        """,
    })  # fmt: skip
    bare = bare_pytest(root, "-n", "2")
    assert bare.final == {"passed": 4}, bare.output
    runner, outcomes = runner_outcomes(run_runner, tmp_path, root, TEP_WORKERS="2")
    assert_same(bare, runner, outcomes)
    # The plan's own dist wins over the suite's, as the plan asks.
    runner, _ = runner_outcomes(run_runner, tmp_path, root, TEP_WORKERS="2", TEP_DIST="load")
    assert runner.summary()["errors"] > 0, runner.output
