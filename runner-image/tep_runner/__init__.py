"""tep-runner: runs a TestPlan's pytest suite and writes its report folder (docs/design.md sections 4-6).

`run(environ)` is the public entry point, shared by the runner pod and `tep run --local`.

The package is imported by every pytest process of a run (the plugin, once.py), so `run` is loaded on first
use: importing the shell here would load the whole runner, with jinja2 and pytest-html's report code, into
the controller and each xdist worker before their first test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tep_runner.shell import run

__all__ = ["run"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from tep_runner.shell import run

        return run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
