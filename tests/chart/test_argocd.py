"""docs/argocd: the TestPlan health check and resource actions, run in a real Lua VM (lupa) the
way Argo CD runs them: the live object as the global `obj`, the script's return value back.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml

ARGO = Path(__file__).resolve().parents[2] / "docs" / "argocd"
ACTIONS = ["run-now", "suspend", "resume"]


def to_lua(lua: lupa.LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def from_lua(value: Any) -> Any:
    if lupa.lua_type(value) != "table":
        return value
    items = dict(value.items())
    if items and all(isinstance(k, int) for k in items) and sorted(items) == list(range(1, len(items) + 1)):
        return [from_lua(items[i]) for i in range(1, len(items) + 1)]
    return {k: from_lua(v) for k, v in items.items()}


def run_lua(script: str, obj: dict) -> Any:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = to_lua(lua, copy.deepcopy(obj))
    # Argo CD runs the script as a chunk; its `return` is the result.
    return from_lua(lua.execute(script))


def health(obj: dict) -> dict:
    return run_lua((ARGO / "health.lua").read_text(), obj)


def action(name: str, obj: dict) -> dict:
    return run_lua((ARGO / "actions" / f"{name}.lua").read_text(), obj)


def plan(status: dict | None = None, generation: int = 3, **spec: Any) -> dict:
    obj = {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": "smoke", "namespace": "qa", "generation": generation},
        "spec": {"crontab": "*/30 * * * *", "source": {"configMap": {"name": "smoke-tests"}}, **spec},
    }
    if status is not None:
        obj["status"] = status
    return obj


def cond(ctype: str, status: str, message: str = "", reason: str = "R") -> dict:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-21T19:42:00Z",
    }


def status(phase: str, *conditions: dict, observed: int = 3, **extra: Any) -> dict:
    return {"observedGeneration": observed, "phase": phase, "conditions": list(conditions), **extra}


VALID = cond("Valid", "True")
PASSED = cond("LastRunSucceeded", "True", "smoke-29012345: 9 passed")
FAILED = cond("LastRunSucceeded", "False", "smoke-29012345: 2 of 120 tests failed")


@pytest.mark.parametrize(
    ("obj", "want_status", "want_message"),
    [
        (plan(), "Progressing", "Waiting for the tep operator"),
        (plan({}), "Progressing", "Waiting for the tep operator"),
        (plan(status("Scheduled", VALID, PASSED, observed=2)), "Progressing", "observe generation 3"),
        (plan(status("Scheduled", VALID, PASSED, observed=None)), "Progressing", "observe generation 3"),
        (
            plan(
                status(
                    "Invalid",
                    cond("Valid", "False", "spec.crontab: '61 * * * *' is not a valid cron expression"),
                )
            ),
            "Degraded",
            "spec.crontab: '61 * * * *' is not a valid cron expression",
        ),
        (plan(status("Invalid")), "Degraded", "The TestPlan is invalid"),
        (plan(status("Running", VALID, FAILED)), "Progressing", "A run is in progress"),
        (plan(status("Scheduled", VALID, FAILED)), "Degraded", "2 of 120 tests failed"),
        (plan(status("Suspended", VALID, FAILED)), "Degraded", "2 of 120 tests failed"),
        (
            plan(
                status(
                    "Scheduled",
                    VALID,
                    cond("LastRunSucceeded", "False"),
                    lastRun={"name": "smoke-1", "result": "Error"},
                )
            ),
            "Degraded",
            "Last run smoke-1: Error",
        ),
        (
            plan(status("Scheduled", VALID, PASSED, nextRunTime="2026-11-21T20:00:00Z")),
            "Healthy",
            "Next run at 2026-11-21T20:00:00Z; last run passed",
        ),
        (plan(status("Scheduled", VALID)), "Healthy", "no run yet"),
        (plan(status("Scheduled")), "Healthy", "no run yet"),
        (plan(status("Scheduled", VALID, cond("LastRunSucceeded", "Unknown"))), "Healthy", "no run yet"),
        (plan(status("Suspended", VALID, PASSED), enabled=False), "Suspended", "last run passed"),
        (plan(status("Suspended", VALID), enabled=False), "Suspended", "no run yet"),
        (plan(status("Exploded", VALID)), "Unknown", "Unknown phase Exploded"),
    ],
    ids=[
        "no-status",
        "empty-status",
        "old-generation",
        "no-observed-generation",
        "invalid",
        "invalid-no-message",
        "running",
        "last-run-failed",
        "suspended-last-run-failed",
        "failed-without-message",
        "scheduled-passed",
        "scheduled-never-ran",
        "scheduled-no-conditions",
        "last-run-unknown",
        "suspended-passed",
        "suspended-never-ran",
        "unknown-phase",
    ],
)
def test_health(obj, want_status, want_message):
    hs = health(obj)
    assert set(hs) == {"status", "message"}
    assert hs["status"] == want_status
    assert want_message in hs["message"]


def test_health_of_object_without_generation():
    """Argo CD may pass objects without metadata.generation (e.g. in its own tests)."""
    obj = plan(status("Scheduled", VALID, PASSED))
    del obj["metadata"]["generation"]
    assert health(obj)["status"] == "Healthy"


def test_run_now_sets_the_annotation_to_now():
    before = datetime.now(UTC).replace(microsecond=0)
    obj = plan(status("Scheduled", VALID))
    out = action("run-now", obj)
    after = datetime.now(UTC)
    value = out["metadata"]["annotations"]["tep.dev/run-requested-at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value), value
    assert before <= datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= after
    # nothing else changes: not the spec, not the status
    del out["metadata"]["annotations"]
    assert out == obj


def test_run_now_keeps_other_annotations():
    obj = plan()
    obj["metadata"]["annotations"] = {"team": "qa", "tep.dev/run-requested-at": "2020-01-01T00:00:00Z"}
    out = action("run-now", obj)
    assert out["metadata"]["annotations"]["team"] == "qa"
    assert out["metadata"]["annotations"]["tep.dev/run-requested-at"] != "2020-01-01T00:00:00Z"


@pytest.mark.parametrize(("name", "enabled"), [("suspend", False), ("resume", True)])
@pytest.mark.parametrize("before", [None, True, False])
def test_suspend_and_resume(name, enabled, before):
    obj = (
        plan(status("Scheduled", VALID))
        if before is None
        else plan(status("Scheduled", VALID), enabled=before)
    )
    out = action(name, obj)
    assert out["spec"]["enabled"] is enabled
    out["spec"].pop("enabled")
    obj["spec"].pop("enabled", None)
    assert out == obj, "only spec.enabled changes"


@pytest.mark.parametrize(
    ("spec", "available"),
    [
        ({}, {"run-now", "suspend"}),
        ({"enabled": True}, {"run-now", "suspend"}),
        ({"enabled": False}, {"run-now", "resume"}),
    ],
)
def test_discovery(spec, available):
    actions = run_lua((ARGO / "actions" / "discovery.lua").read_text(), plan(**spec))
    assert set(actions) == set(ACTIONS)
    assert {name for name, a in actions.items() if not a["disabled"]} == available


def test_argocd_cm_snippet_carries_the_same_scripts():
    cm = yaml.safe_load((ARGO / "argocd-cm.yaml").read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    data = cm["data"]
    assert set(data) == {
        "resource.customizations.health.tep.dev_TestPlan",
        "resource.customizations.actions.tep.dev_TestPlan",
    }
    assert data["resource.customizations.health.tep.dev_TestPlan"] == (ARGO / "health.lua").read_text()
    actions = yaml.safe_load(data["resource.customizations.actions.tep.dev_TestPlan"])
    assert actions["discovery.lua"] == (ARGO / "actions" / "discovery.lua").read_text()
    assert [d["name"] for d in actions["definitions"]] == ACTIONS
    for d in actions["definitions"]:
        assert d["action.lua"] == (ARGO / "actions" / f"{d['name']}.lua").read_text(), d["name"]
