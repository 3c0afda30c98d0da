"""Benchmark of stopping a run at its deadline, run by hand: `python bench/stop.py [--repeat 3]`.

A suite of two quick tests and one that sleeps 600 s runs under `-n 2` with a deadline; the figure is the
time from the deadline to the runner's return (every artifact written), with the runner killing the xdist
workers as soon as the plugin has reported the running test (the product), and without (xdist's own
teardown: execnet interrupts a busy worker after 5 s and kills it after 10 s). Printed: both medians and
their ratio.
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runner-image"))

SUITE = """
import time

def test_quick_a():
    pass

def test_quick_b():
    pass

def test_hang():
    time.sleep(600)
"""


def stop_seconds(folder: Path, deadline: int, kill_workers: bool) -> float:
    import tep_runner
    from tep_runner import stopping

    env = {
        "TEP_NAMESPACE": "bench",
        "TEP_PLAN": "stop",
        "TEP_TESTS_DIR": str(folder / "tests"),
        "TEP_REPORTS_DIR": str(folder / "reports"),
        "TEP_WORKERS": "2",
        "TEP_ACTIVE_DEADLINE_SECONDS": str(deadline),
    }
    # Without the plugin's acknowledgement awaited, the runner never kills the workers early.
    with mock.patch.object(stopping, "ACK_SECONDS", stopping.ACK_SECONDS if kill_workers else 0):
        began = time.monotonic()
        tep_runner.run(env, stdout=io.StringIO())
    return time.monotonic() - began - deadline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deadline", type=int, default=8, help="seconds; enough for the workers to start")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    figures: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for kill in (True, False):
                folder = Path(tmp, f"{i}-{kill}")
                (folder / "tests").mkdir(parents=True)
                (folder / "tests" / "test_hang.py").write_text(SUITE)
                figures[kill].append(stop_seconds(folder, args.deadline, kill))
    fast, slow = (statistics.median(figures[k]) for k in (True, False))
    print(
        f"deadline -> every artifact written: {fast:.2f} s (workers killed), {slow:.2f} s (xdist's teardown)"
    )
    print(f"ratio: {fast / slow:.2f}")


if __name__ == "__main__":
    main()
