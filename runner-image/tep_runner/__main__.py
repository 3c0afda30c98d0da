"""`tep-runner` (the pod's entry point) and `tep-runner git-clone` (the git init container's)."""

from __future__ import annotations

import argparse
import os
import sys

from tep_runner.shell import git_clone, run


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="tep-runner", description="Run a TestPlan's tests (TEP_* settings)."
    )
    parser.add_argument("command", nargs="?", choices=["git-clone"], help="fetch the tests from git instead")
    args = parser.parse_args()
    # SIGTERM (Kubernetes at activeDeadlineSeconds, on deletion) and SIGINT are handled by run() itself, which
    # `tep run --local` calls too: pytest is stopped and every artifact still written.
    sys.exit(git_clone(os.environ) if args.command == "git-clone" else run(os.environ))


if __name__ == "__main__":
    main()
