"""`python -m tep_runner.precompile`: write pytest's rewritten bytecode of every installed plugin now.

pytest rewrites the asserts of each plugin it loads (every module of each `pytest11` entry point's
distribution, and `-p tep_runner.plugin`) and keeps the result beside the module, as bytecode. A run may write
none (the image's root filesystem is read-only; the runner sets PYTHONDONTWRITEBYTECODE for read-only test
folders), so without that cache every process of every run -- the controller and each xdist worker --
rewrites them again: a fifth of a second of CPU each, close to half of a worker's start-up. The image runs
this after installing its plugins (a runner image built FROM it should again, after installing more), and
so does `make run-venv`.

It runs one tiny suite in a temporary folder the way the runner runs pytest (xdist, pytest-html, the
plugin), so that every plugin module a run loads, in the controller or in a worker, is imported once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tep_runner.command import PLUGIN


def main() -> int:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="tep-precompile-") as folder:
        tmp = Path(folder)
        (tmp / "pytest.ini").write_text("[pytest]\n")
        (tmp / "test_precompile.py").write_text("def test_precompile():\n    pass\n")
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--numprocesses=1",
            f"--html={tmp / 'report.html'}", "--self-contained-html", "-p", PLUGIN,
        ]  # fmt: skip
        return subprocess.run(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
