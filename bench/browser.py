"""Benchmark of the report browser (`tep serve`), run by hand: `python bench/browser.py [--plans 1000]`.

A reports volume of --plans plans x --runs runs of history (--tests tests each), written with the runner's
own history functions (tep_runner.history: build_record, append, dumps) and, for the newest --folders runs
of each plan, run folders with summary.json and junit.xml as the runner leaves them after retention. The
server runs as a separate process (`tep serve`); timings are its own (the Server-Timing header), medians of
--repeat requests after one warm-up request. Printed next to each target:

- the plans page (`/`, every plan summarised and sorted) and a plan page (a different plan each time,
  so mostly read from the volume, not from the cache): median <= 200 ms;
- the server's peak RSS (VmHWM from /proc/<pid>/status, after everything above): <= 150 MB;
- the plans page again, each request after the store's refresh interval, so that it re-checks every
  plan (three stat calls each): same target;
- the time until a new run, recorded by tep_runner.history.write_run as the runner does, shows on the
  plans page's API route (/api/plans): <= 5 s.
"""

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tep_operator.browser.store import REFRESH_SECONDS
from tep_runner import history
from tep_runner.settings import settings_from_env

TARGET_MS = 200.0
TARGET_RSS_MB = 150.0
TARGET_PICKUP_S = 5.0
OUTCOMES = ["passed"] * 17 + ["failed", "flaky", "skipped"]


def junit(tests: dict[str, tuple[str, float]]) -> str:
    cases = []
    for test, (outcome, seconds) in tests.items():
        file, name = test.split("::")
        body = {
            "failed": '<failure message="boom">E   assert 0</failure>',
            "skipped": '<skipped message="later"/>',
        }
        cases.append(
            f'<testcase classname="{file[:-3]}" name="{name}" file="{file}" time="{seconds}">'
            f"{body.get(outcome, '')}</testcase>"
        )
        if outcome == "flaky":  # the rerun's extra <testcase>, as pytest-rerunfailures writes it
            cases.append(f'<testcase classname="{file[:-3]}" name="{name}" file="{file}" time="{seconds}"/>')
    return f'<testsuites><testsuite name="pytest">{"".join(cases)}</testsuite></testsuites>'


def summary_of(run_id: str, start: datetime, tests: dict[str, tuple[str, float]]) -> dict:
    outcomes = [o for o, _ in tests.values()]
    failed = outcomes.count("failed")
    return {
        "result": "Failed" if failed else "Passed", "total": len(tests), "passed": outcomes.count("passed")
        + outcomes.count("flaky"), "failed": failed, "errors": 0, "skipped": outcomes.count("skipped"),
        "flaky": outcomes.count("flaky"), "durationSeconds": round(sum(s for _, s in tests.values()), 3),
        "workers": 2, "shards": 1, "runId": run_id, "startTime": start.isoformat(), "failedTests": [],
    }  # fmt: skip


def generate(root: Path, plans: int, runs: int, tests: int, folders: int, rng: random.Random) -> list[Path]:
    now = datetime.now(UTC)
    plan_dirs = []
    for p in range(plans):
        plan_dir = root / f"team-{p % 20}" / f"plan-{p:04d}"
        plan_dir.mkdir(parents=True)
        records: list = []
        for r in range(runs):
            start = now - timedelta(hours=runs - r, minutes=p % 60)
            run_id = f"{start:%Y%m%dT%H%M%SZ}-{p:04d}{r:02d}"
            results = {
                f"test_mod{t % 5}.py::test_case_{t}": (rng.choice(OUTCOMES) if p % 3 else "passed",
                                                       round(rng.uniform(0.01, 3), 3))
                for t in range(tests)
            }  # fmt: skip
            summary = summary_of(run_id, start, results)
            parsed = history.tests_from_junit(junit(results))
            records = history.append(
                records, history.build_record(summary, parsed, history.TRIGGER_SCHEDULE), now
            )
            if r >= runs - folders:
                run_dir = plan_dir / run_id
                run_dir.mkdir()
                (run_dir / "summary.json").write_text(json.dumps(summary))
                (run_dir / "junit.xml").write_text(junit(results))
                (run_dir / "report.html").write_text("<html><body>report</body></html>")
                latest = run_id
        (plan_dir / history.FILE).write_text(history.dumps(records))
        (plan_dir / "latest").symlink_to(latest)
        plan_dirs.append(plan_dir)
    return plan_dirs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> tuple[float, bytes]:
    """(server time in ms from the Server-Timing header, body)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
        body = response.read()
        timing = response.headers["Server-Timing"]
    return float(timing.split("dur=")[1]), body


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30, help="runs of history per plan")
    parser.add_argument("--tests", type=int, default=20, help="tests per run")
    parser.add_argument("--folders", type=int, default=5, help="run folders kept per plan (retention)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    parser.add_argument("--keep", action="store_true", help="keep the generated volume and print where")
    args = parser.parse_args()
    rng = random.Random(42)
    base = Path(tempfile.mkdtemp(prefix="tep-bench-browser-"))
    root = base / "reports"
    began = time.perf_counter()
    plan_dirs = generate(root, args.plans, args.runs, args.tests, args.folders, rng)
    took = time.perf_counter() - began
    print(f"volume: {args.plans} plans x {args.runs} runs x {args.tests} tests, written in {took:.1f}s")
    port = free_port()
    command = [sys.executable, "-c", "import sys; from tep_operator.cli import main; sys.exit(main())",
               "serve", "--reports", str(root), "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get(port, "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("tep serve did not start") from None
                time.sleep(0.1)
        cold, _ = get(port, "/")
        print(f"plans page, first request (reads every history): {cold:.0f} ms")
        plans_ms = statistics.median(get(port, "/")[0] for _ in range(args.repeat))
        swept = []
        for _ in range(5):  # each after the refresh interval: every plan's signature is checked again
            time.sleep(REFRESH_SECONDS + 0.05)
            swept.append(get(port, "/")[0])
        sweep_ms = statistics.median(swept)
        api_ms = statistics.median(get(port, "/api/plans")[0] for _ in range(args.repeat))
        picks = rng.sample(plan_dirs, args.repeat + 1)
        get(port, f"/plans/{picks[0].parent.name}/{picks[0].name}")
        plan_ms = statistics.median(get(port, f"/plans/{d.parent.name}/{d.name}")[0] for d in picks[1:])
        same_ms = statistics.median(
            get(port, f"/plans/{picks[1].parent.name}/{picks[1].name}")[0] for _ in range(5)
        )
        rss = peak_rss_mb(server.pid)

        target = plan_dirs[len(plan_dirs) // 2]
        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-newrun01"
        results = {"test_mod0.py::test_new": ("passed", 0.5)}
        run_dir = target / run_id
        run_dir.mkdir()
        (run_dir / "summary.json").write_text(json.dumps(summary_of(run_id, datetime.now(UTC), results)))
        (run_dir / "junit.xml").write_text(junit(results))
        names = {"TEP_NAMESPACE": target.parent.name, "TEP_PLAN": target.name}
        settings = settings_from_env(names | {"TEP_TESTS_DIR": "/", "TEP_REPORTS_DIR": str(root)})
        written = time.monotonic()
        history.write_run(target, run_dir, settings, print)
        key = (target.parent.name, target.name)
        while run_id not in {
            p["lastRun"]["runId"]
            for p in json.loads(get(port, "/api/plans")[1])["plans"]
            if (p["namespace"], p["plan"]) == key
        }:
            if time.monotonic() - written > 30:
                break
            time.sleep(0.05)
        pickup = time.monotonic() - written
        get(port, "/")  # the plans page sees it too
    finally:
        server.terminate()
        server.wait(timeout=10)
        if args.keep:
            print(f"volume kept: {root}")
        else:
            shutil.rmtree(base)
    ms, mb, sec = f"<= {TARGET_MS:.0f} ms", f"<= {TARGET_RSS_MB:.0f} MB", f"<= {TARGET_PICKUP_S:.0f} s"
    rows = [
        ("plans page `/` (median server time)", f"{plans_ms:.1f} ms", ms, plans_ms <= TARGET_MS),
        ("plans page `/`, re-checking every plan", f"{sweep_ms:.1f} ms", ms, sweep_ms <= TARGET_MS),
        ("a plan page, a different plan each time", f"{plan_ms:.1f} ms", ms, plan_ms <= TARGET_MS),
        ("server peak RSS (VmHWM)", f"{rss:.0f} MB", mb, rss <= TARGET_RSS_MB),
        ("new run -> on the plans page", f"{pickup:.2f} s", sec, pickup <= TARGET_PICKUP_S),
    ]
    print(f"/api/plans (all {args.plans} plans): {api_ms:.1f} ms; the same plan page again: {same_ms:.1f} ms")
    for name, value, goal, ok in rows:
        print(f"{name:45} {value:>10}   target {goal:10} {verdict(ok)}")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
