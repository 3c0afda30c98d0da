"""tep-runner: runs a TestPlan's pytest suite and writes its report folder (docs/design.md sections 4-6).

`run(environ)` is the public entry point, shared by the runner pod and `tep run --local`.
"""

from tep_runner.shell import run

__all__ = ["run"]
