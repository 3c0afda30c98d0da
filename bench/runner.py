"""Benchmark of tep-runner, run by hand: `python bench/runner.py [--repeat 3]`.

1. Overhead: wall time of `python -m tep_runner` over bare `python -m pytest -n N` on the same suite
   (the smoke example, and a generated suite of 400 tests sleeping 10-25 ms). Target <= 1.10.
2. Parallel efficiency of `-n auto`: the ideal time (sum of the test times / workers) over the measured
   time. Target >= 0.8. Measured two ways: the pytest session (junit testsuite time, which includes
   starting the workers) and the runner's whole wall time; bare pytest's session efficiency for comparison.
Each figure is the median of --repeat runs. `--python` picks the interpreter for both (e.g.
.venv-run/bin/python from `make run-venv`, which has none of the development plugins that slow worker
start-up).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "examples" / "smoke" / "tests"
# tep_runner importable by any interpreter, as the image's .pth file makes it.
ENV = {"PYTHONWARNINGS": "ignore", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(REPO / "runner-image")}


def generate_suite(folder: Path, tests: int = 400, files: int = 8) -> Path:
    folder.mkdir(parents=True)
    for f in range(files):
        lines = ["import time", ""]
        for i in range(f, tests, files):
            lines += [f"def test_{i}():", f"    time.sleep({10 + (i * 7) % 16} / 1000)", ""]
        (folder / f"test_gen_{f}.py").write_text("\n".join(lines))
    return folder


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=os.environ | ENV | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def bare(python: str, suite: Path, workers: str, junit: Path) -> float:
    command = [python, "-m", "pytest", str(suite), "-n", workers, "-q", "-p", "no:cacheprovider"]
    return timed([*command, "--junitxml", str(junit)], {})


def runner(python: str, suite: Path, workers: str, reports: Path) -> tuple[float, dict]:
    env = {"TEP_NAMESPACE": "bench", "TEP_PLAN": suite.name, "TEP_TESTS_DIR": str(suite),
           "TEP_REPORTS_DIR": str(reports), "TEP_WORKERS": workers, "TEP_KEEP_LAST": "1"}  # fmt: skip
    wall = timed([python, "-m", "tep_runner"], env)
    run_dir = reports / "bench" / suite.name / "latest"
    return wall, json.loads((run_dir / "summary.json").read_text()) | {"junit": run_dir / "junit.xml"}


def junit_times(junit: Path) -> tuple[float, float]:
    """(pytest session time, sum of the test times)."""
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return float(suite.get("time")), sum(float(c.get("time", 0)) for c in root.iter("testcase"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate_suite(Path(tmp) / "generated")
        print(f"{args.python}, {cpus} CPUs, load {os.getloadavg()[0]:.1f}; median of {args.repeat} runs each")
        for name, suite in (("smoke (9 x 1 s)", SMOKE), ("generated (400 x 10-25 ms)", generated)):
            ratios, efficiencies, wall_efficiencies, bare_efficiencies = [], [], [], []
            for i in range(args.repeat):
                bare_junit = Path(tmp) / f"bare-{i}.xml"
                base = bare(args.python, suite, "auto", bare_junit)
                wall, summary = runner(args.python, suite, "auto", Path(tmp) / "reports")
                session, test_sum = junit_times(summary["junit"])
                ideal = test_sum / summary["workers"]
                ratios.append(wall / base)
                efficiencies.append(ideal / session)
                wall_efficiencies.append(ideal / wall)
                bare_session, bare_sum = junit_times(bare_junit)
                bare_efficiencies.append(bare_sum / summary["workers"] / bare_session)
                print(
                    f"  {name}: bare {base:.2f}s, runner {wall:.2f}s ({summary['passed']}/{summary['total']} "
                    f"passed, {summary['workers']} workers), sum {test_sum:.2f}s, session {session:.2f}s"
                )
            median = statistics.median
            print(f"{name}:")
            print(f"  runner / bare pytest wall time:       {median(ratios):.3f}  (target <= 1.10)")
            print(f"  -n auto efficiency, pytest session:   {median(efficiencies):.3f}  (target >= 0.8)")
            print(f"  -n auto efficiency, runner wall time: {median(wall_efficiencies):.3f}")
            print(f"  (bare pytest's own session efficiency: {median(bare_efficiencies):.3f})")


if __name__ == "__main__":
    main()
