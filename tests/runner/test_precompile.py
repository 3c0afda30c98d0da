"""`python -m tep_runner.precompile` (the image's build step, `make run-venv`): pytest's rewritten bytecode of
every plugin module a run loads, in its controller and in its xdist workers, is cached afterwards."""

import os
import subprocess
import sys
from pathlib import Path


def test_precompile_caches_the_rewritten_plugins_of_the_controller_and_of_the_workers(tmp_path: Path) -> None:
    # A bytecode folder of its own: the checkout's venv is left as it is, and what is written can be listed.
    # PYTHONDONTWRITEBYTECODE, as a runner pod has it, must not stop it.
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, "-m", "tep_runner.precompile"], env=env, check=True, timeout=120)
    rewritten = {p.parent.name + "/" + p.name.split(".")[0] for p in tmp_path.rglob("*-pytest-*.pyc")}
    for module in (
        "tep_runner/plugin",  # -p tep_runner.plugin
        "xdist/dsession",  # the controller's
        "xdist/remote",  # a worker's
        "pytest_html/basereport",  # --html
    ):
        assert module in rewritten, f"{module}: not cached; cached: {sorted(rewritten)}"


def test_the_image_and_the_runtime_venv_run_it() -> None:
    repo = Path(__file__).resolve().parents[2]
    for made_by in (repo / "runner-image" / "Dockerfile", repo / "Makefile"):
        assert "python -m tep_runner.precompile" in made_by.read_text(), made_by
