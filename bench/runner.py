"""Benchmark of tep-runner, run by hand: `python bench/runner.py [--only FIGURE ...] [--repeat 3]`.

Every figure is a ratio of wall times measured in this one run of the script, on this machine; the load
average is printed with each (the machine may be shared). Figures (docs/speed.md, bench/README.md):

1. skewed: a suite of many 0.1 s tests and a few 3 s tests collected last. The runner with recorded
   durations (order: duration; one earlier run recorded them) over bare `pytest -n 2 --dist load`, and
   over the lower bound max(longest test, total / workers) + worker start-up (bare `pytest -n 2` of one
   empty test). Target <= 1.15 x the bound.
2. io: tests waiting on a local HTTP server that answers after 100 ms. `workers: adaptive` after three
   runs over bare `pytest -n auto`. Target >= 2.5 x faster, on 300 tests (and, not judged, the earlier 120).
3. shards: a sleep-bound suite with skewed durations, `tep run --local` with 4 shards over 1 shard (the
   1-shard run records the durations the split uses). Target >= 3.5 x, imbalance <= 1.1; with the
   imbalance the round-robin split and pytest-split's least_duration (ported below) would give on the
   same suite and history.
4. overhead: the runner over bare `pytest -n N` on the example suite (target <= 1.05), and on a generated
   suite of 400 tests sleeping 10-25 ms; `-n auto`'s parallel efficiency (target >= 0.8).

`--python` picks the interpreter (`.venv-run/bin/python` from `make run-venv`: runtime dependencies
only, as in the runner image).
"""

import argparse
import heapq
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "examples" / "smoke" / "tests"
sys.path[:0] = [str(REPO / "runner-image")]
from tep_runner import history  # noqa: E402  (the runner's own history reader)
from tep_runner.balance import imbalance, lpt  # noqa: E402
from tep_runner.durations import from_history  # noqa: E402

# tep_runner and tep_operator importable by any interpreter, as the images' installs make them.
ENV = {
    "PYTHONWARNINGS": "ignore",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONPATH": f"{REPO / 'runner-image'}{os.pathsep}{REPO / 'operator'}",
}
FIGURES = ("skewed", "io", "shards", "overhead")
SOURCES = [REPO / "runner-image" / "tep_runner", REPO / "operator" / "tep_operator"]
results: list[tuple[str, float, str, bool]] = []


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def judge(name: str, value: float, target: str, ok: bool) -> None:
    results.append((name, value, target, ok))
    print(f"  {name}: {value:.3f}  (target {target}) {'PASS' if ok else 'MISS'}  [{load()}]", flush=True)


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def timed(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        command,
        env=os.environ | ENV | (env or {}),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def prepare(python: str) -> None:
    """The bytecode a runner image is built with (runner-image/Dockerfile), for the sources on PYTHONPATH:
    nothing a run starts may write any (PYTHONDONTWRITEBYTECODE), so without it every process of every run,
    bare or the runner's, would compile them or rewrite pytest's plugins again."""
    subprocess.run([python, "-m", "compileall", "-q", *map(str, SOURCES)], check=True)
    subprocess.run([python, "-m", "tep_runner.precompile"], env=os.environ | ENV, check=True)


def bare(python: str, suite: Path, *options: str) -> float:
    return timed([python, "-m", "pytest", *options, "-q", "-p", "no:cacheprovider"], cwd=suite)


def runner(python: str, suite: Path, reports: Path, plan: str, **settings: str) -> tuple[float, dict]:
    env = {"TEP_NAMESPACE": "bench", "TEP_PLAN": plan, "TEP_TESTS_DIR": str(suite),
           "TEP_REPORTS_DIR": str(reports), "TEP_KEEP_LAST": "1", **settings}  # fmt: skip
    wall = timed([python, "-m", "tep_runner"], env)
    run_dir = reports / "bench" / plan / "latest"
    return wall, json.loads((run_dir / "summary.json").read_text()) | {"junit": run_dir / "junit.xml"}


def junit_times(junit: Path) -> tuple[float, float]:
    """(pytest session time, sum of the test times)."""
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return float(suite.get("time")), sum(float(c.get("time", 0)) for c in root.iter("testcase"))


# 1. skewed ------------------------------------------------------------------------------------------------


def skewed(python: str, tmp: Path) -> None:
    shorts, longs = 80, 3
    suite = write(tmp / "skewed", {
        "pytest.ini": "[pytest]\n",
        "test_a_short.py": "import time\n\n" + "".join(
            f"def test_short_{i}():\n    time.sleep(0.1)\n\n" for i in range(shorts)),
        "test_z_long.py": "import time\n\n" + "".join(
            f"def test_long_{i}():\n    time.sleep(3)\n\n" for i in range(longs)),
        "empty/test_empty.py": "def test_nothing():\n    pass\n",
    })  # fmt: skip
    workers = 2
    startup = bare(python, suite / "empty", "-n", str(workers))
    base = bare(python, suite, "-n", str(workers), "--dist", "load", "--ignore=empty")
    reports = tmp / "skewed-reports"
    options = {"TEP_WORKERS": str(workers), "TEP_PYTEST_ARGS": '["--ignore=empty"]'}
    runner(python, suite, reports, "skewed", **options)  # records the durations
    wall, summary = runner(python, suite, reports, "skewed", **options)
    bound = max(3.0, (shorts * 0.1 + longs * 3.0) / workers) + startup
    print(f"skewed ({shorts} x 0.1 s, then {longs} x 3 s), {workers} workers: bare {base:.2f} s, runner with "
          f"durations {wall:.2f} s ({summary['passed']}/{summary['total']}), bound {bound:.2f} s "
          f"(start-up {startup:.2f} s)")  # fmt: skip
    judge(
        "skewed: bare pytest -n 2 --dist load / runner with durations",
        base / wall,
        "> 1 (faster)",
        base > wall,
    )
    judge("skewed: runner with durations / lower bound", wall / bound, "<= 1.15", wall / bound <= 1.15)


# 2. io ----------------------------------------------------------------------------------------------------


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.1)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


CALL = "    assert urllib.request.urlopen(URL).read() == b'ok'\n"


# 300 tests: 30 s of waiting at 2 workers, a suite that waits longer than its workers take to start, as one
# worth sizing the workers for does. The earlier 120 (12 s at 2 workers, where starting 8 workers on 2 cores
# took about as long as their tests) is measured too, to compare with earlier figures, and not judged.
IO_TESTS, IO_TESTS_BEFORE = 300, 120


def io_bound(python: str, tmp: Path, tests: int, judged: bool) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    requests = 2
    suite = write(tmp / f"io-{tests}", {
        "pytest.ini": "[pytest]\n",
        "test_io.py": "import os, urllib.request\n\nURL = os.environ['BENCH_URL']\n\n" + "".join(
            f"def test_call_{i}():\n" + CALL * requests + "\n" for i in range(tests)),
    })  # fmt: skip
    url = {"BENCH_URL": f"http://127.0.0.1:{server.server_address[1]}/"}
    ENV.update(url)
    try:
        base = bare(python, suite, "-n", "auto")
        reports = tmp / f"io-reports-{tests}"
        walls = []
        for _ in range(3):
            wall, summary = runner(python, suite, reports, "io", TEP_WORKERS="adaptive")
            walls.append(
                f"{summary['workers']} workers {wall:.1f} s ({summary.get('cpuUtilization', 0):.0%} CPU)"
            )
        wall, summary = runner(python, suite, reports, "io", TEP_WORKERS="adaptive")
    finally:
        server.shutdown()
        for key in url:
            ENV.pop(key)
    print(f"io ({tests} tests x {requests} requests of 100 ms): bare -n auto {base:.2f} s; adaptive runs: "
          f"{', '.join(walls)}; then {summary['workers']} workers {wall:.2f} s")  # fmt: skip
    name = f"io ({tests} tests): bare -n auto / adaptive after three runs"
    if judged:
        judge(name, base / wall, ">= 2.5", base / wall >= 2.5)
    else:
        print(f"  {name}: {base / wall:.3f}  (not judged: the earlier size)  [{load()}]", flush=True)


# 3. shards ------------------------------------------------------------------------------------------------


def least_duration(ids: list[str], durations: dict[str, float], splits: int) -> list[list[str]]:
    """pytest-split 0.10's `least_duration` algorithm (its algorithms.py), for comparison."""
    known = {i: durations[i] for i in ids if i in durations}
    average = sum(known.values()) / len(known) if known else 1
    items = sorted(((i, known.get(i, average)) for i in ids), key=lambda t: str(t[0]))
    items.sort(key=lambda t: t[1], reverse=True)
    heap = [(0.0, g) for g in range(splits)]
    groups: list[list[str]] = [[] for _ in range(splits)]
    for item, seconds in items:
        total, g = heapq.heappop(heap)
        groups[g].append(item)
        heapq.heappush(heap, (total + seconds, g))
    return groups


def shards(python: str, tmp: Path) -> None:
    # 102 s of sleeping, skewed: a few long tests, many short ones, ordered so that round-robin splits badly.
    seconds = [8.0, 1.0, 1.0, 1.0] * 4 + [6.0, 0.8, 0.8, 0.8] * 4 + [1.2] * 20
    suite = write(tmp / "sharded", {
        "tests/pytest.ini": "[pytest]\n",
        "tests/test_sleep.py": "import time\n\n" + "".join(
            f"def test_{i:02d}():\n    time.sleep({s})\n\n" for i, s in enumerate(seconds)),
    })  # fmt: skip
    reports = tmp / "shard-reports"

    def local(count: int) -> tuple[float, dict]:
        plan = suite / f"plan-{count}.yaml"
        plan.write_text(
            "apiVersion: tep.dev/v1alpha1\nkind: TestPlan\nmetadata: {name: sharded}\n"
            f"spec: {{crontab: '@daily', shards: {count}, source: {{configMap: {{name: t}}}},"
            " pytest: {workers: 1}, reports: {keepLast: 5}}\n"
        )
        tep = [python, "-c", "import sys; from tep_operator.cli import main; sys.exit(main())"]
        wall = timed([*tep, "run", "--local", "-f", str(plan), "--reports", str(reports)])
        latest = reports / "default" / "sharded" / "latest"
        return wall, json.loads((latest / "summary.json").read_text())

    one, one_summary = local(1)  # also records the durations
    durations = from_history(history.read_records(reports / "default" / "sharded"))
    four, four_summary = local(4)
    ids = sorted(durations)
    rr = [ids[k::4] for k in range(4)]

    def predicted(split: list[list[str]]) -> float:
        return imbalance([sum(durations[i] for i in share) for share in split])

    print(f"shards ({len(seconds)} tests sleeping {sum(seconds):.0f} s, 1 worker each): 1 shard {one:.2f} s "
          f"({one_summary['passed']}/{one_summary['total']}), 4 shards {four:.2f} s "
          f"({four_summary['passed']}/{four_summary['total']})")  # fmt: skip
    print(f"  predicted imbalance from the same history: LPT {predicted(lpt(ids, durations, 4)):.3f}, "
          f"pytest-split least_duration {predicted(least_duration(ids, durations, 4)):.3f}, "
          f"round-robin {predicted(rr):.3f}")  # fmt: skip
    judge("shards: 1 shard / 4 shards (local)", one / four, ">= 3.5", one / four >= 3.5)
    judge("shards: measured imbalance of the 4 shards", four_summary["imbalance"], "<= 1.1",
          four_summary["imbalance"] <= 1.1)  # fmt: skip


# 4. overhead ----------------------------------------------------------------------------------------------


def generate_suite(folder: Path, tests: int = 400, files: int = 8) -> Path:
    folder.mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    for f in range(files):
        lines = ["import time", ""]
        for i in range(f, tests, files):
            lines += [f"def test_{i}():", f"    time.sleep({10 + (i * 7) % 16} / 1000)", ""]
        (folder / f"test_gen_{f}.py").write_text("\n".join(lines))
    return folder


def overhead(python: str, tmp: Path, repeat: int) -> None:
    generated = generate_suite(tmp / "generated")
    for name, suite, target in (
        ("example smoke (9 x 1 s)", SMOKE, 1.05),
        ("generated (400 x 10-25 ms)", generated, 1.10),
    ):
        ratios, efficiencies = [], []
        for i in range(repeat):
            junit = tmp / f"bare-{i}.xml"
            base = bare(python, suite, "-n", "auto", f"--junitxml={junit}")
            wall, summary = runner(python, suite, tmp / "reports", suite.name, TEP_WORKERS="auto")
            session, test_sum = junit_times(summary["junit"])
            ratios.append(wall / base)
            efficiencies.append(test_sum / summary["workers"] / session)
            print(f"  {name}: bare {base:.2f} s, runner {wall:.2f} s "
                  f"({summary['passed']}/{summary['total']}, {summary['workers']} workers)")  # fmt: skip
        judge(f"overhead {name}: runner / bare pytest -n auto (median)", statistics.median(ratios),
              f"<= {target}", statistics.median(ratios) <= target)  # fmt: skip
        efficiency = statistics.median(efficiencies)
        judge(f"overhead {name}: -n auto efficiency, pytest session", efficiency, ">= 0.8", efficiency >= 0.8)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each overhead figure (median)")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    args.python = os.path.abspath(args.python)  # the bare runs start in the suite's folder
    print(f"{args.python}, {os.cpu_count()} CPUs, {load()}")
    prepare(args.python)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for figure in args.only:
            if figure == "skewed":
                skewed(args.python, tmp)
            elif figure == "io":
                io_bound(args.python, tmp, IO_TESTS, judged=True)
                io_bound(args.python, tmp, IO_TESTS_BEFORE, judged=False)
            elif figure == "shards":
                shards(args.python, tmp)
            else:
                overhead(args.python, tmp, args.repeat)
    print("\nsummary:")
    for name, value, target, ok in results:
        print(f"  {'PASS' if ok else 'MISS'}  {name}: {value:.3f} (target {target})")
    sys.exit(0 if all(ok for *_, ok in results) else 1)


if __name__ == "__main__":
    main()
