"""A TestPlan file checked against the CRD's own openAPIV3Schema, as the API server checks it.

crds/testplans.tep.dev.yaml is the one source of truth; the package carries a checked copy
(tep_operator/crds/, kept equal by tests/unit/test_schema.py) so an installed wheel finds it.
On a cluster the API server prunes (or, with `kubectl apply --validate=strict`, rejects) every
field its structural schema does not declare; `tep run --local` never meets an API server, so
without this check a typo such as `spec.pytest.worker` would run silently with the defaults.

The schema is JSON Schema plus Kubernetes' structural extensions, translated here:
- an object without `x-kubernetes-preserve-unknown-fields: true` and without
  `additionalProperties` accepts only its `properties` (what the server prunes is unknown);
- `x-kubernetes-int-or-string: true` is "an integer or a string";
- a null value of a field that is not `nullable` is dropped before validation, as the server does,
  and a key YAML reads as a number or a boolean is a string, as kubectl sends it;
- `x-kubernetes-validations` (CEL rules) are not evaluated: plan.py checks the same rules
  semantically after the schema (e.g. exactly one source);
- `default` is not applied here: plan.py applies the defaults;
- `metadata` is checked as the API server checks an ObjectMeta (`OBJECT_META`).
"""

import difflib
import functools
import importlib.resources
import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

import jsonschema
import yaml

from tep_operator import names
from tep_operator.plan import Problem

CRD_RESOURCE = "crds/testplans.tep.dev.yaml"  # inside the tep_operator package
# ObjectMeta fields the API server writes; a plan file copied from `kubectl get -o yaml` has them.
_SERVER_WRITTEN = (
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
)
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# A CRD's schema leaves metadata to the API server, which checks it as an ObjectMeta: these are
# ObjectMeta's fields (the ones a plan file sets typed, the server-written ones left open).
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "uid": {"type": "string"},
        "generation": {"type": "integer"},
        **{key: {} for key in _SERVER_WRITTEN},
    },
    "additionalProperties": False,
}


def load_crd() -> dict[str, Any]:
    """The CRD the package ships (a copy of crds/testplans.tep.dev.yaml)."""
    text = importlib.resources.files("tep_operator").joinpath(CRD_RESOURCE).read_text(encoding="utf-8")
    crd: dict[str, Any] = yaml.safe_load(text)
    return crd


def strict_schema(schema: Mapping[str, Any], *, root: bool = True) -> dict[str, Any]:
    """A structural schema as plain JSON Schema in which unknown fields are errors."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {
                name: OBJECT_META if root and name == "metadata" else strict_schema(sub, root=False)
                for name, sub in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = strict_schema(value, root=False)
        elif key == "x-kubernetes-int-or-string" and value:
            out["type"] = ["integer", "string"]
        elif key == "default":
            continue  # plan.py applies defaults; jsonschema would only ignore them
        else:
            out[key] = value
    is_object = schema.get("type") == "object" or "properties" in schema
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if is_object and "additionalProperties" not in schema and not preserve:
        out["additionalProperties"] = False
    return out


@functools.cache
def _validators() -> dict[str, jsonschema.protocols.Validator]:
    """One validator per served version of the CRD, by apiVersion."""
    crd = load_crd()
    group = crd["spec"]["group"]
    out: dict[str, jsonschema.protocols.Validator] = {}
    for version in crd["spec"]["versions"]:
        if version.get("served"):
            schema = strict_schema(version["schema"]["openAPIV3Schema"])
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            cls.check_schema(schema)
            out[f"{group}/{version['name']}"] = cls(schema)
    return out


def _as_sent(value: Any) -> Any:
    """A YAML document as kubectl sends it: keys as strings (YAML's `1:` and `true:` too), and
    without null values of fields, which the API server drops when not `nullable` (none of ours is)."""
    if isinstance(value, Mapping):
        return {_key(k): _as_sent(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_as_sent(v) for v in value]
    return value


def _key(key: object) -> str:
    return json.dumps(key) if isinstance(key, bool) else str(key)


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None or isinstance(value, str | int | float):
        return json.dumps(value)
    return f"{value} ({type(value).__name__})"  # YAML timestamps load as dates


def _unknown(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"unknown field (did you mean {close[0]}?)" if close else "unknown field"


def _problems(error: jsonschema.ValidationError) -> list[Problem]:
    path = _path(error.absolute_path)
    kind, expected, instance = (
        str(error.validator),
        cast(Any, error.validator_value),
        cast(Any, error.instance),
    )
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if kind == "additionalProperties":
        known = list(schema.get("properties") or {})
        return [
            Problem(_path([*error.absolute_path, name]), _unknown(name, known), "UnknownField")
            for name in instance
            if name not in known
        ]
    if kind == "required":
        return [
            Problem(_path([*error.absolute_path, name]), "is required", "MissingField")
            for name in expected
            if name not in instance
        ]
    if kind == "type":
        wanted = " or ".join([expected] if isinstance(expected, str) else expected)
        message = f"expected {wanted}, got {_shown(instance)}"
    elif kind == "enum":
        message = f"must be one of {', '.join(str(v) for v in expected)}, got {_shown(instance)}"
    elif kind == "minimum":
        message = f"must be at least {expected}, got {_shown(instance)}"
    elif kind == "maximum":
        message = f"must be at most {expected}, got {_shown(instance)}"
    elif kind == "minLength" and expected == 1:
        message = "must not be empty"
    else:
        message = error.message
    return [Problem(path or "(document)", message, "InvalidField")]


def schema_problems(body: Mapping[str, Any]) -> list[Problem]:
    """Every field of a TestPlan object that the CRD's schema does not accept, by field path."""
    validators = _validators()
    api_version = body.get("apiVersion")
    validator = validators.get(str(api_version))
    if validator is None:
        served = ", ".join(validators) or "none"
        return [Problem("apiVersion", f"expected {served}, got {_shown(api_version)}", "InvalidField")]
    if body.get("kind") != names.KIND:
        return [Problem("kind", f"expected {names.KIND}, got {_shown(body.get('kind'))}", "InvalidField")]
    problems = [problem for error in validator.iter_errors(_as_sent(body)) for problem in _problems(error)]
    return sorted(problems, key=lambda p: p.field)
