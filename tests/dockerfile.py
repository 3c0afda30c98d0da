"""Our Dockerfiles read as a container runtime reads the images they build, without a Docker engine.

`image_config` is the final stage's configuration (ENV, USER, WORKDIR, ENTRYPOINT, CMD), from which
tests/runner/test_pod_sandbox.py runs the runner exactly as a kubelet starts the image.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

# What both images inherit from python:3.12-slim-bookworm (`docker inspect`, Config.Env/User/WorkingDir):
# Debian's PATH with /usr/local/bin, where that image's Python is, in front.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
BASE_IMAGE = "python:3.12-slim-bookworm"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) of every instruction, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@dataclass
class ImageConfig:
    env: dict[str, str] = field(default_factory=lambda: dict(BASE_ENV))
    user: str = ""  # the base image's: root
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def _exec_form(rest: str) -> list[str]:
    return list(json.loads(rest)) if rest.startswith("[") else ["/bin/sh", "-c", rest]


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), value)


def image_config(dockerfile: Path) -> ImageConfig:
    """The configuration of the image the final stage builds (its base: python:3.12-slim-bookworm)."""
    steps = instructions(dockerfile)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    assert BASE_IMAGE in steps[last_from][1] or any(
        BASE_IMAGE in rest for word, rest in steps if word == "ARG"
    ), f"{dockerfile}: the final stage is not built on {BASE_IMAGE}, whose configuration BASE_ENV holds"
    config = ImageConfig(cmd=["python3"])  # the base image's CMD
    cmd_set = False
    for word, rest in steps[last_from + 1 :]:
        if word == "ENV":
            words = shlex.split(rest)
            pairs = [w.split("=", 1) for w in words] if "=" in words[0] else [[words[0], " ".join(words[1:])]]
            for name, value in pairs:
                config.env[name] = _expand(value, config.env)
        elif word == "USER":
            config.user = rest
        elif word == "WORKDIR":
            config.workdir = rest if rest.startswith("/") else f"{config.workdir.rstrip('/')}/{rest}"
        elif word == "ENTRYPOINT":
            config.entrypoint = _exec_form(rest)
            if not cmd_set:  # Docker: an ENTRYPOINT resets the CMD inherited from the base image
                config.cmd = []
        elif word == "CMD":
            config.cmd, cmd_set = _exec_form(rest), True
    return config
