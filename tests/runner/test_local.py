"""`tep run --local`: the README's first command, through the real console script."""

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
TEP = [str(pathlib.Path(sys.executable).with_name("tep"))]  # the console script of this environment


def tep(*args: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TEP, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_the_mixed_example_runs_like_a_pod(tmp_path: pathlib.Path) -> None:
    done = tep("run", "--local", "-f", str(REPO / "examples/mixed/plan.yaml"), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr  # a test fails on purpose
    assert (
        "tep: Failed: 8 tests, 6 passed, 1 failed, 0 errors, 1 skipped, 0 xfailed, 0 xpassed, 1 flaky"
        in done.stdout
    )
    assert "tep: failed: test_mixed.py::test_wrong_total" in done.stdout
    run = (tmp_path / "tep-reports/default/mixed/latest").resolve()
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["total"], summary["failed"], summary["flaky"]) == (8, 1, 1)
    assert (run / "report.html").is_file() and (run / "junit.xml").is_file()
    assert f"tep: report: {run / 'report.html'}" in done.stdout


def test_a_bad_plan_is_refused_naming_every_field(tmp_path: pathlib.Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "apiVersion: tep.dev/v1alpha1\nkind: TestPlan\nmetadata: {name: bad}\n"
        "spec: {crontab: '0 */5 * * * *', timeZone: Mars/Base, source: {}}\n"
    )
    done = tep("run", "--local", "-f", str(plan), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"tep run --local: {plan}: spec.crontab: '0 */5 * * * *' has 6 fields")
    assert "spec.timeZone: 'Mars/Base' is not a known IANA time zone" in done.stderr
    assert "spec.source: set exactly one of configMap, git, image" in done.stderr
    assert not (tmp_path / "tep-reports").exists()  # nothing ran, nothing written


def test_unknown_and_mistyped_fields_are_refused_naming_each(tmp_path: pathlib.Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "apiVersion: tep.dev/v1alpha1\nkind: TestPlan\nmetadata: {name: typos}\n"
        "spec:\n  crontab: '@daily'\n  schedule: '@hourly'\n  shards: two\n"
        "  source: {configMap: {name: t}}\n  pytest: {worker: 3}\n"
    )
    done = tep("run", "--local", "-f", str(plan), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"tep run --local: {plan}: ")
    for problem in (
        "spec.schedule: unknown field",
        "spec.pytest.worker: unknown field",
        'spec.shards: expected integer, got "two"',
    ):
        assert problem in done.stderr
    assert not (tmp_path / "tep-reports").exists()  # nothing ran


def test_a_yaml_syntax_error_is_refused_naming_the_line(tmp_path: pathlib.Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("kind: TestPlan\nmetadata: {name: x\nspec: {}\n")
    done = tep("run", "--local", "-f", str(plan), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"tep run --local: {plan}:3:5: YAML syntax error"), done.stderr
