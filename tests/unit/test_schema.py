"""A plan file checked against the CRD's own schema: unknown and mistyped fields, by path."""

import copy
import datetime as dt
import pathlib
from typing import Any

import pytest
import yaml

from tep_operator.local import LocalRunError, check_plan, load_plan_file
from tep_operator.plan import PlanError
from tep_operator.schema import load_crd, schema_problems, strict_schema

REPO = pathlib.Path(__file__).resolve().parents[2]
CRD_SOURCE = REPO / "crds" / "testplans.tep.dev.yaml"
CRD_PACKAGED = REPO / "operator" / "tep_operator" / "crds" / "testplans.tep.dev.yaml"


def plan_body(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": "smoke", "labels": {"team": "qa"}, "annotations": {"a": "b"}},
        "spec": {"crontab": "*/30 * * * *", "source": {"configMap": {"name": "smoke-tests"}}},
    }
    body["spec"].update(spec)
    return body


def problems(body: dict[str, Any]) -> dict[str, str]:
    return {p.field: p.message for p in schema_problems(body)}


def test_the_packaged_crd_is_a_copy_of_crds() -> None:
    assert CRD_PACKAGED.is_file() and not CRD_PACKAGED.is_symlink(), (
        f"{CRD_PACKAGED} must be a real file (a wheel does not follow symlinks out of the package)"
    )
    assert CRD_PACKAGED.read_bytes() == CRD_SOURCE.read_bytes(), (
        "the packaged CRD differs from crds/testplans.tep.dev.yaml; sync it with:\n"
        "    cp crds/testplans.tep.dev.yaml operator/tep_operator/crds/"
    )
    assert load_crd() == yaml.safe_load(CRD_SOURCE.read_text())


def test_a_valid_plan_has_no_problems() -> None:
    assert problems(plan_body()) == {}


@pytest.mark.parametrize("plan_file", sorted(REPO.glob("examples/*/plan.yaml")), ids=lambda p: p.parent.name)
def test_every_example_plan_passes(plan_file: pathlib.Path) -> None:
    assert check_plan(load_plan_file(plan_file)).name


def test_unknown_fields_are_named_with_their_path() -> None:
    body = plan_body(schedule="@daily", pytest={"worker": 3})
    body["spec"]["source"]["configMap"]["key"] = "x"
    body["extra"] = 1
    assert problems(body) == {
        "extra": "unknown field",
        "spec.schedule": "unknown field",
        "spec.pytest.worker": "unknown field (did you mean workers?)",
        "spec.source.configMap.key": "unknown field",
    }


def test_mistyped_fields_say_what_was_expected_and_what_came() -> None:
    body = plan_body(
        shards="two",
        enabled="yes",
        env=[{"value": "no name"}],
        pytest={"args": "-x", "dist": "fast", "reruns": 11},
        reports={"keepLast": 0},
        podTemplate={"nodeSelector": {"pool": 1}, "tolerations": {}},
    )
    assert problems(body) == {
        "spec.shards": 'expected integer, got "two"',
        "spec.enabled": 'expected boolean, got "yes"',
        "spec.env[0].name": "is required",
        "spec.pytest.args": 'expected array, got "-x"',
        "spec.pytest.dist": 'must be one of load, loadscope, loadfile, loadgroup, worksteal, no, got "fast"',
        "spec.pytest.reruns": "must be at most 10, got 11",
        "spec.reports.keepLast": "must be at least 1, got 0",
        "spec.podTemplate.nodeSelector.pool": "expected string, got 1",
        "spec.podTemplate.tolerations": "expected array, got an object",
    }


def test_required_and_empty_fields() -> None:
    body = plan_body(crontab="")
    del body["spec"]["source"]
    assert problems(body) == {"spec.crontab": "must not be empty", "spec.source": "is required"}
    assert problems({"apiVersion": "tep.dev/v1alpha1", "kind": "TestPlan", "metadata": {}}) == {
        "spec": "is required"
    }


@pytest.mark.parametrize("workers", [4, "4", "auto"])
def test_int_or_string_takes_both(workers: object) -> None:
    assert problems(plan_body(pytest={"workers": workers})) == {}


@pytest.mark.parametrize(("workers", "shown"), [(True, "true"), ([2], "a list"), (1.5, "1.5")])
def test_int_or_string_takes_nothing_else(workers: object, shown: str) -> None:
    assert problems(plan_body(pytest={"workers": workers})) == {
        "spec.pytest.workers": f"expected integer or string, got {shown}"
    }


def test_preserve_unknown_fields_keeps_kubernetes_types_open() -> None:
    body = plan_body(
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        envFrom=[{"configMapRef": {"name": "settings"}}],
        resources={"limits": {"cpu": "2", "nvidia.com/gpu": 1}, "claims": [{"name": "x"}]},
        podTemplate={
            "affinity": {"nodeAffinity": {"anything": ["goes"]}},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "securityContext": {"fsGroup": 1000},
        },
    )
    assert problems(body) == {}


def test_null_values_are_dropped_as_the_api_server_does() -> None:
    assert problems(plan_body(reports=None, pytest=None, timeZone=None)) == {}


def test_keys_that_yaml_reads_as_numbers_are_field_names() -> None:
    body = plan_body()
    body["spec"].update({2: "x", False: "y"})
    assert problems(body) == {"spec.2": "unknown field", "spec.false": "unknown field"}


def test_wrong_api_version_or_kind() -> None:
    assert problems({**plan_body(), "apiVersion": "tep.dev/v1"}) == {
        "apiVersion": 'expected tep.dev/v1alpha1, got "tep.dev/v1"'
    }
    assert problems({**plan_body(), "kind": "Testplan"}) == {"kind": 'expected TestPlan, got "Testplan"'}


def test_every_closed_object_of_the_schema_refuses_unknown_fields() -> None:
    """Walk the CRD and its strict form side by side: closed exactly where the API server prunes."""
    raw = load_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    closed: list[str] = []

    def walk(node: dict[str, Any], strict: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and path != ".metadata":
            opened = node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
            if opened:
                assert strict.get("additionalProperties") is not False, path
            else:
                assert strict["additionalProperties"] is False, path
                closed.append(path)
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, strict["properties"][name], f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], strict["items"], f"{path}[]")

    walk(raw, strict_schema(raw), "")
    assert {"", ".spec", ".spec.pytest", ".spec.source.git", ".status.lastRun"} <= set(closed)
    assert ".spec.resources" not in closed and ".spec.env[]" not in closed


def test_cel_rules_are_checked_by_the_semantic_checks() -> None:
    """The CRD's x-kubernetes-validations are not evaluated by the schema; plan.py checks the rule."""
    crd = CRD_SOURCE.read_text()
    assert "exactly one of source.configMap, source.git, source.image" in crd
    body = plan_body(source={"configMap": {"name": "a"}, "image": {"path": "/t"}})
    assert problems(body) == {}
    with pytest.raises(PlanError) as info:
        check_plan(body)
    assert "spec.source: set exactly one of configMap, git, image (found: configMap, image)" in str(
        info.value
    )


def test_schema_and_semantic_problems_come_together_without_repeats() -> None:
    body = plan_body(crontab="0 0 0 * * *", shards="two", pytest={"args": [1], "worker": 2})
    with pytest.raises(PlanError) as info:
        check_plan(body)
    fields = [p.field for p in info.value.problems]
    assert fields == ["spec.pytest.args[0]", "spec.pytest.worker", "spec.shards", "spec.crontab"]
    assert info.value.problems[-1].reason == "InvalidCrontab"


def test_check_plan_does_not_change_the_input() -> None:
    body = plan_body(reports=None)
    before = copy.deepcopy(body)
    check_plan(body)
    assert body == before


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("kind: TestPlan\nspec:\n  crontab: '*/5 * * * *\n", ":4:1: YAML syntax error"),
        ("kind: TestPlan\nmetadata: {name: x\nspec: {}\n", ":3:5: YAML syntax error"),
        (
            "kind: TestPlan\nspec: a\n  source: b\n",
            ":3:9: YAML syntax error: mapping values are not allowed here",
        ),
    ],
)
def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: pathlib.Path, text: str, where: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    with pytest.raises(LocalRunError) as info:
        load_plan_file(plan)
    assert str(info.value).startswith(f"{plan}{where}"), str(info.value)


def test_metadata_is_checked_as_an_object_meta() -> None:
    body = plan_body()
    body["metadata"] = {"name": "a", "nmae": "b", "annotations": {"a": 1}, "generation": "x"}
    assert problems(body) == {
        "metadata.nmae": "unknown field (did you mean name?)",
        "metadata.annotations.a": "expected string, got 1",
        "metadata.generation": 'expected integer, got "x"',
    }
    for bad in ({"metadata": "x"}, {"metadata": ["x"], "apiVersion": "v1"}):
        with pytest.raises(PlanError):  # reported, not a crash in read_plan
            check_plan({**plan_body(), **bad})


def test_a_yaml_timestamp_is_shown_as_what_it_is() -> None:
    assert problems(plan_body(crontab=dt.date(2026, 1, 2))) == {
        "spec.crontab": "expected string, got 2026-01-02 (date)"
    }


def test_a_plan_as_kubectl_get_prints_it_passes() -> None:
    body = plan_body()
    body["metadata"].update(
        namespace="qa",
        uid="0b7c",
        generation=3,
        resourceVersion="123",
        creationTimestamp="2026-11-21T19:00:00Z",
        managedFields=[{"manager": "kubectl", "operation": "Apply"}],
    )
    body["status"] = {"phase": "Scheduled", "lastRun": {"name": "smoke-1", "passed": 9, "failedTests": []}}
    assert problems(body) == {}


def test_a_file_that_is_not_utf8_is_named(tmp_path: pathlib.Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(b"kind: TestPlan\n\xff\xfe\n")
    with pytest.raises(LocalRunError, match=r"plan.yaml: cannot read the plan: not UTF-8 text \(byte 15\)"):
        load_plan_file(plan)
