"""The runner's verdict against bare pytest on real suites, run by hand:

    python bench/verdicts.py SUITE [SUITE ...] [--env NAME=VALUE ...]

Each SUITE is a folder where the suite's owners run `pytest` (an unpacked sdist: `pip download --no-binary
:all: --no-deps NAME`), in an environment holding the runner (`make run-venv`) and the suite's own
dependencies. For each: bare `pytest` (the verdict), bare `pytest -n 2` (xdist's own), and the runner with
two workers, each with tests/runner/plugins/tep_outcomes recording every test's outcomes. Printed: pytest's
final line of each, the runner's summary, junit.xml and report.html counts, and how many tests' outcomes
differ from bare pytest's; MATCH or MISMATCH for each artifact. Exit 1 when one does not match.
"""

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "runner-image"), str(REPO)]
from tests.runner.conftest import BARE_PYTEST, PLUGINS, final_line  # noqa: E402
from tests.runner.test_verdicts import OUTCOMES, html_counts, junit_cases, junit_counts  # noqa: E402

_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
# summary.json's keys as pytest-html's labels
_HTML = {"passed": "passed", "failed": "failed", "skipped": "skipped", "xfailed": "xfailed",
         "xpassed": "xpassed", "errors": "error"}  # fmt: skip


def bare(suite: Path, out: Path, name: str, env: dict[str, str], *args: str) -> tuple[dict[str, int], dict]:
    """pytest's final line (as summary.json's keys) and each test's outcomes."""
    outcomes = out / f"{name}.json"
    started = time.monotonic()
    done = subprocess.run(
        [BARE_PYTEST, "-p", "no:cacheprovider", "-p", "tep_outcomes", "--color=no", *args],
        cwd=suite, env=env | {"TEP_OUTCOMES_FILE": str(outcomes)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    final = final_line(_COLOUR.sub("", done.stdout))
    took = time.monotonic() - started
    print(f"  bare pytest {' '.join(args):5} exit {done.returncode}, {took:5.1f} s: {final}")
    return final, json.loads(outcomes.read_text()) if outcomes.exists() else {}


def check(name: str, found: object, expected: object) -> bool:
    matched = found == expected
    print(f"  {name}: {found}" + ("  MATCH" if matched else f"  MISMATCH (expected {expected})"))
    return matched


def compare(suite: Path, extra: dict[str, str], out: Path) -> bool:
    import tep_runner

    print(suite)
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | extra
    env |= {"PYTHONPATH": os.pathsep.join([str(PLUGINS), *filter(None, [env.get("PYTHONPATH")])])}
    final, outcomes = bare(suite, out, "bare", env)
    _, outcomes_n2 = bare(suite, out, "bare-n2", env, "-n", "2")
    settings = {
        "TEP_NAMESPACE": "bench", "TEP_PLAN": suite.name, "TEP_TESTS_DIR": str(suite),
        "TEP_REPORTS_DIR": str(out / "reports"), "TEP_WORKERS": "2",
        "TEP_PYTEST_ARGS": json.dumps(["-p", "tep_outcomes"]), "TEP_OUTCOMES_FILE": str(out / "runner.json"),
    }  # fmt: skip
    started = time.monotonic()
    code = tep_runner.run(env | settings, stdout=io.StringIO())
    run = (out / "reports" / "bench" / suite.name / "latest").resolve()
    summary = json.loads((run / "summary.json").read_text())
    print(f"  runner             exit {code}, {time.monotonic() - started:5.1f} s: {summary['result']}")
    counted = {key: summary[key] for key in OUTCOMES if summary[key] or key in final}
    junit, page = junit_counts(run / "junit.xml"), html_counts(run / "report.html")
    runner = json.loads((out / "runner.json").read_text())
    differ = [test for test in outcomes.keys() | runner.keys() if outcomes.get(test) != runner.get(test)]
    differ_n2 = [
        test for test in outcomes.keys() | outcomes_n2.keys() if outcomes.get(test) != outcomes_n2.get(test)
    ]
    print(f"  tests whose outcomes differ: runner {len(differ)} {differ[:3]}, bare -n 2 {len(differ_n2)}")
    results = [
        check("summary.json", counted, {key: n for key, n in final.items() if key in OUTCOMES}),
        check("junit.xml <testcase>s", len(junit_cases(run / "junit.xml")), summary["total"]),
        check(
            "junit.xml counts",
            (junit["failures"], junit["errors"], junit["skipped"]),
            (summary["failed"], summary["errors"], summary["skipped"] + summary["xfailed"]),
        ),
        check(
            "report.html counts",
            {key: page.get(label, 0) for key, label in _HTML.items()},
            {key: summary[key] for key in _HTML},
        ),
        check("per-test outcomes", len(differ), 0),
    ]
    return all(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", type=Path, help="folders where the suites' owners run pytest")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for every run (repeatable)")
    options = parser.parse_args()
    extra = dict(item.split("=", 1) for item in options.env)
    with tempfile.TemporaryDirectory(prefix="tep-verdicts-") as tmp:
        matched = [
            compare(suite.resolve(), extra, Path(tmp, str(i))) for i, suite in enumerate(options.suites)
        ]
    print("MATCH" if all(matched) else "MISMATCH", f"{sum(matched)} of {len(matched)} suites")
    return 0 if all(matched) else 1


if __name__ == "__main__":
    sys.exit(main())
