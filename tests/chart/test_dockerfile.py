"""operator/Dockerfile: what can be checked without a Docker engine.

The image itself is built in CI / by hand (`docker build -f operator/Dockerfile -t tep-operator:dev .`)
and runs in tests/e2e/test_helm.py.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.chart.chart_tools import CHART, REPO

DOCKERFILE = REPO / "operator" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"<<'EOF'.*?\nEOF\n", "<<'EOF'\n", DOCKERFILE.read_text(), flags=re.S)
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def pins() -> dict[str, str]:
    block = re.search(r"COPY <<'EOF' /tmp/constraints.txt\n(.*?)\nEOF\n", DOCKERFILE.read_text(), re.S)
    assert block, "the constraints heredoc is missing"
    out = {}
    for line in block.group(1).splitlines():
        name, _, version = line.partition("==")
        out[canonicalize_name(name)] = version
    return out


def test_every_dependency_is_pinned_with_an_accepted_version():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = pins()
    build_requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    for spec in [*project["dependencies"], *build_requires]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} (pyproject.toml) is not pinned in operator/Dockerfile"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"operator/Dockerfile pins {req.name}=={pinned[name]}, pyproject.toml wants {req.specifier}"
        )


def test_image_runs_the_operator_as_a_numeric_non_root_user():
    steps = instructions()
    froms = [rest for word, rest in steps if word == "FROM"]
    assert any("python:3.12-slim" in line for word, line in steps if word == "ARG"), "slim Python 3.12 base"
    assert len(froms) == 2, "a build stage and a runtime stage"
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER must be a numeric non-root UID, got {users[-1]}"
    assert ("ENTRYPOINT", '["tep"]') in final and ("CMD", '["operator"]') in final


def test_chart_runs_as_the_image_user():
    values = (CHART / "values.yaml").read_text()
    (user,) = [rest for word, rest in instructions() if word == "USER"]
    uid, gid = user.split(":")
    assert f"runAsUser: {uid}" in values and f"runAsGroup: {gid}" in values


def test_dockerfile_copies_only_what_exists_or_is_expected():
    for word, rest in instructions():
        if word == "COPY" and not rest.startswith(("--from", "<<")):
            *sources, _dest = rest.split()
            for src in sources:
                assert src in {"pyproject.toml", "README.md"} or src.startswith(
                    ("operator/", "runner-image/")
                ), src


def test_install_helm_script_is_valid_bash():
    script = REPO / "scripts" / "install-helm.sh"
    assert script.stat().st_mode & 0o111, "scripts/install-helm.sh must be executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 64 and "usage" in usage.stderr
