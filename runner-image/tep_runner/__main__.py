"""`tep-runner` (the pod's entry point) and `tep-runner git-clone` (the git init container's)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from tep_runner.shell import git_clone, run


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="tep-runner", description="Run a TestPlan's tests (TEP_* settings)."
    )
    parser.add_argument("command", nargs="?", choices=["git-clone"], help="fetch the tests from git instead")
    args = parser.parse_args()
    # Kubernetes stops a pod (activeDeadlineSeconds, deletion) with SIGTERM; treat it like Ctrl-C so pytest
    # is interrupted cleanly and the result still reaches the termination message.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(git_clone(os.environ) if args.command == "git-clone" else run(os.environ))


if __name__ == "__main__":
    main()
