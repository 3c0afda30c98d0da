"""spec.notify: validation, triggers, the exactly-once state in the status, and the payloads."""

import base64
import datetime as dt
import hashlib
import hmac
import urllib.parse
from typing import Any

import jsonschema
import pytest
import yaml

from tep_operator import notify
from tep_operator.plan import NotifyTarget, PlanError, read_plan
from tests.chart.chart_tools import plan_jsonschema

NOW = dt.datetime(2026, 11, 21, 20, 0, tzinfo=dt.UTC)


def body(*targets: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": "smoke", "namespace": "qa"},
        "spec": {
            "crontab": "*/30 * * * *",
            "source": {"configMap": {"name": "smoke-tests"}},
            "notify": list(targets),
        },
    }


def target(**fields: Any) -> dict[str, Any]:
    return {
        "name": "chat",
        "kind": "slack",
        "urlFrom": {"secretKeyRef": {"name": "hooks", "key": "slack"}},
        **fields,
    }


def problems(plan: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(PlanError) as info:
        read_plan(plan)
    return {p.field: p.message for p in info.value.problems}


# -- validation -------------------------------------------------------------------------------


def test_a_target_with_defaults() -> None:
    (read,) = read_plan(body(target())).notify
    assert read == NotifyTarget("chat", "slack", "hooks", "slack", ("Failed", "Error", "Recovered"), 1)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "email"}, "spec.notify[0].kind", "'email' is not one of webhook, slack, teams"),
        ({"kind": None}, "spec.notify[0].kind", "is required: one of webhook"),
        ({"on": ["Failed", "Broken"]}, "spec.notify[0].on[1]", "'Broken' is not one of Failed, Error"),
        ({"on": []}, "spec.notify[0].on", "must be a non-empty list"),
        ({"after": 0}, "spec.notify[0].after", "must be between 1 and 1000, not 0"),
        ({"url": "https://hooks.slack.com/x"}, "spec.notify[0].url", "is not a known field"),
        (
            {"urlFrom": {"secretKeyRef": {"name": "hooks"}}},
            "spec.notify[0].urlFrom.secretKeyRef.key",
            "is required",
        ),
        ({"urlFrom": {"value": "https://x"}}, "spec.notify[0].urlFrom.value", "is not a known field"),
        ({"name": "Team Chat"}, "spec.notify[0].name", "must be a DNS label"),
    ],
)
def test_bad_targets_are_named(fields: dict[str, Any], field: str, message: str) -> None:
    found = problems(body(target(**fields)))
    assert message in found[field], found


def test_a_bare_on_key_in_yaml_is_named() -> None:

    plan = body(
        yaml.safe_load("name: chat\nkind: slack\nurlFrom: {secretKeyRef: {name: h, key: k}}\non: [Failed]")
    )
    assert problems(plan) == {
        "spec.notify[0].on": 'write the key in quotes, "on": a bare on is read as true by YAML 1.1'
    }
    quoted = yaml.safe_load(
        'name: chat\nkind: slack\nurlFrom: {secretKeyRef: {name: h, key: k}}\n"on": [Failed]'
    )
    assert read_plan(body(quoted)).notify[0].on == ("Failed",)


def test_target_names_are_unique() -> None:
    assert "'chat' is used twice" in problems(body(target(), target(kind="teams")))["spec.notify[1].name"]


@pytest.mark.parametrize(
    "fields",
    [{"kind": "email"}, {"on": ["Broken"]}, {"after": 0}, {"url": "https://x"}, {"on": []}],
)
def test_the_crd_schema_rejects_them_too(fields: dict[str, Any]) -> None:
    schema = plan_jsonschema()
    jsonschema.validate(body(target()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body(target(**fields)), schema)


# -- when -------------------------------------------------------------------------------------


def run(result: str, name: str = "smoke-1", **fields: Any) -> dict[str, Any]:
    return {"name": name, "result": result, "total": 9, "passed": 9, **fields}


def triggers(results: list[str], **target_fields: Any) -> list[str | None]:
    """The trigger each run of a sequence fires, feeding back consecutiveFailures."""
    plan = read_plan(body(target(**target_fields)))
    status: dict[str, Any] = {}
    fired: list[str | None] = []
    for index, result in enumerate(results):
        # "Flaky": a pass with a flaky test; "Failed+flaky": a failure with one
        the_run = run(result.split("+")[0], f"smoke-{index}", flaky=1 if "laky" in result else 0)
        if result == "Flaky":
            the_run["result"] = "Passed"
        patch = notify.run_patch(plan, status, {"lastRun": the_run}, NOW)
        new = [e for e in patch.get("notifications", []) if e["run"] == the_run["name"]]
        fired.append(new[0]["trigger"] if new else None)
        status = {**status, **patch, "lastRun": the_run}
    return fired


def test_transitions_only_by_default() -> None:
    got = triggers(["Passed", "Failed", "Failed", "Error", "Passed", "Passed", "Error", "Passed"])
    assert got == [None, "Failed", None, None, "Recovered", None, "Error", "Recovered"]


def test_the_first_run_failing_is_a_transition() -> None:
    assert triggers(["Error"]) == ["Error"]


def test_after_n_consecutive_failures() -> None:
    got = triggers(["Failed", "Failed", "Passed", "Failed", "Error", "Failed", "Failed", "Passed"], after=3)
    assert got == [None, None, None, None, None, "Failed", None, "Recovered"]


def test_flaky_and_always() -> None:
    assert triggers(["Passed", "Flaky", "Failed+flaky"], on=["Flaky"]) == [None, "Flaky", None]
    assert triggers(["Passed", "Failed", "Failed"], on=["Always"]) == ["Always", "Always", "Always"]
    assert triggers(["Passed", "Failed", "Failed"], on=["Failed", "Always"]) == ["Always", "Failed", "Always"]


def test_a_late_run_changes_nothing() -> None:
    plan = read_plan(body(target()))
    assert notify.run_patch(plan, {"consecutiveFailures": 0}, {"history": [run("Failed")]}, NOW) == {}


def test_consecutive_failures_from_a_status_without_the_field() -> None:
    assert notify.failures_before({"lastRun": run("Failed")}) == 1
    assert notify.failures_before({"lastRun": run("Passed")}) == 0
    assert notify.failures_before({}) == 0


# -- exactly once -----------------------------------------------------------------------------


def test_entries_are_added_once_and_bounded() -> None:
    plan = read_plan(body(target()))
    chat = plan.notify[0]
    first = notify.entry(plan, chat, "Failed", NOW, run="smoke-1")
    assert first == {
        "key": "qa/smoke/smoke-1/chat/Failed",
        "target": "chat",
        "trigger": "Failed",
        "state": "Pending",
        "time": "2026-11-21T20:00:00Z",
        "run": "smoke-1",
    }
    assert notify.add_entries([first], [dict(first)]) == [first]
    done = [
        {**notify.entry(plan, chat, "Failed", NOW, run=f"smoke-{i}"), "state": "Delivered"} for i in range(40)
    ]
    pending = notify.entry(plan, chat, "Failed", NOW, run="smoke-old")
    kept = notify.add_entries([pending, *done], [notify.entry(plan, chat, "Recovered", NOW, run="smoke-41")])
    assert len(kept) == notify.MAX_ENTRIES
    assert kept[0] == pending, "a pending entry is never dropped"
    assert kept[-1]["run"] == "smoke-41" and kept[1]["run"] == "smoke-12"


def test_mark_only_a_pending_entry() -> None:
    status = {"notifications": [{"key": "k", "target": "chat", "trigger": "Failed", "state": "Pending"}]}
    patch = notify.mark(status, "k", notify.DELIVERED, NOW, 2)
    assert patch == {
        "notifications": [
            {
                "key": "k",
                "target": "chat",
                "trigger": "Failed",
                "state": "Delivered",
                "time": "2026-11-21T20:00:00Z",
                "attempts": 2,
            }
        ]
    }
    assert notify.mark(patch, "k", notify.FAILED, NOW, 1, "boom") is None
    assert notify.pending(patch) == []


# -- what -------------------------------------------------------------------------------------


def test_a_notice_falls_back_to_the_history_entry() -> None:
    status = {
        "lastRun": run("Passed", "smoke-2"),
        "history": [
            run("Passed", "smoke-2"),
            run("Failed", "smoke-1", failed=1, reportPath="qa/smoke/r1/report.html"),
        ],
    }
    item = {"key": "qa/smoke/smoke-1/chat/Failed", "trigger": "Failed", "run": "smoke-1"}
    found = notify.notice(item, status, "qa", "smoke", "https://reports.example.com")
    assert found.run["name"] == "smoke-1" and found.result == "Failed"
    assert found.report_url == "https://reports.example.com/files/qa/smoke/r1/report.html"
    assert notify.notice(item, status, "qa", "smoke", "").report_url == ""
    assert found.consecutive_failures == 0  # an entry without it: the status' count
    late = {**item, "consecutiveFailures": 3}  # sent after newer runs: the count as of its run
    assert (
        notify.notice(late, {**status, "consecutiveFailures": 0}, "qa", "smoke", "").consecutive_failures == 3
    )


def test_a_missed_webhook_body() -> None:
    item = {
        "key": "qa/smoke/missed@2026-11-21T20:00:00Z/hook/Missed",
        "trigger": "Missed",
        "dueTime": "2026-11-21T20:00:00Z",
    }
    found = notify.webhook_body(notify.notice(item, {}, "qa", "smoke", ""))
    assert found == {
        "version": "tep.dev/notification/v1",
        "dedupeKey": "qa/smoke/missed@2026-11-21T20:00:00Z/hook/Missed",
        "trigger": "Missed",
        "plan": "smoke",
        "namespace": "qa",
        "result": "Missed",
        "reason": "",
        "run": None,
        "dueTime": "2026-11-21T20:00:00Z",
        "consecutiveFailures": 0,
        "counts": None,
        "failedTests": [],
        "flakyTests": [],
        "reportUrl": None,
    }


def test_runner_counts_are_read_tolerantly() -> None:
    item = {"key": "k", "trigger": "Failed", "run": "smoke-1"}
    status = {"lastRun": run("Failed", xfailed=2, timedOut=1, flakyTests=["t.py::f"])}
    found = notify.webhook_body(notify.notice(item, status, "qa", "smoke", ""))
    assert (found["counts"]["xfailed"], found["counts"]["xpassed"], found["counts"]["timedOut"]) == (2, 0, 1)
    assert found["flakyTests"] == ["t.py::f"]


def test_long_lists_are_cut_and_wecom_stays_within_its_limit() -> None:
    tests = [f"tests/test_{i}.py::test_{'x' * 300}" for i in range(40)]
    item = {"key": "k", "trigger": "Failed", "run": "smoke-1"}
    found = notify.notice(item, {"lastRun": run("Failed", failedTests=tests)}, "qa", "smoke", "")
    text = notify.dingtalk_body(found)["markdown"]["text"]
    assert text.count("- `tests/test_") == notify.MAX_LISTED_TESTS and "... and 30 more" in text
    assert len(notify.wecom_body(found)["markdown"]["content"].encode()) <= notify.WECOM_MAX_BYTES


def test_slack_text_is_escaped() -> None:
    item = {"key": "k", "trigger": "Error", "run": "smoke-1"}
    found = notify.notice(item, {"lastRun": run("Error", reason="OOMKilled: a <b> & c")}, "qa", "smoke", "")
    assert "OOMKilled: a &lt;b&gt; &amp; c" in notify.slack_body(found)["blocks"][1]["text"]["text"]


@pytest.mark.parametrize(
    ("kind", "answer", "problem"),
    [
        ("dingtalk", b'{"errcode":0,"errmsg":"ok"}', None),
        (
            "dingtalk",
            b'{"errcode":310000,"errmsg":"keywords not in content"}',
            "code 310000: keywords not in content",
        ),
        ("wecom", b'{"errcode":93000,"errmsg":"invalid webhook url"}', "code 93000: invalid webhook url"),
        ("feishu", b'{"code":0,"msg":"success"}', None),
        ("feishu", b'{"code":19021,"msg":"sign match fail"}', "code 19021: sign match fail"),
        ("slack", b"ok", None),
        ("webhook", b'{"errcode":1}', None),
    ],
)
def test_robots_report_errors_in_a_200(kind: str, answer: bytes, problem: str | None) -> None:
    found = notify.response_problem(kind, answer)
    assert (found is None) if problem is None else (found is not None and problem in found)


# -- the robots' signature security setting -----------------------------------------------------


def test_dingtalk_signature_as_its_documentation_computes_it() -> None:

    secret, now = "SEC0123456789abcdef", 1700000000.123
    url, sent = notify.signed(
        "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=t", {"a": 1}, secret, now
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["access_token"] == ["t"] and query["timestamp"] == ["1700000000123"]
    # https://open.dingtalk.com/document/robots/customize-robot-security-settings
    expected = base64.b64encode(
        hmac.new(secret.encode(), b"1700000000123\n" + secret.encode(), hashlib.sha256).digest()
    )
    assert query["sign"] == [expected.decode()]
    assert sent == {"a": 1}


def test_feishu_signature_as_its_documentation_computes_it() -> None:

    url, sent = notify.signed(
        "feishu",
        "https://open.feishu.cn/open-apis/bot/v2/hook/x",
        {"msg_type": "text"},
        "s3cr3t",
        1700000000.9,
    )
    assert url == "https://open.feishu.cn/open-apis/bot/v2/hook/x"
    # https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot:
    # HMAC-SHA256 keyed with "<ts>\n<secret>" over an empty message
    expected = base64.b64encode(hmac.new(b"1700000000\ns3cr3t", b"", hashlib.sha256).digest()).decode()
    assert sent == {"timestamp": "1700000000", "sign": expected, "msg_type": "text"}


def test_a_signing_secret_is_for_the_robots_that_sign() -> None:
    signing = {"secretKeyRef": {"name": "hooks", "key": "sign"}}
    (read,) = read_plan(body(target(kind="dingtalk", signingSecretFrom=signing))).notify
    assert (read.signing_secret_name, read.signing_secret_key) == ("hooks", "sign")
    found = problems(body(target(kind="slack", signingSecretFrom=signing)))
    assert found == {"spec.notify[0].signingSecretFrom": "only for kinds dingtalk, feishu, not slack"}
    found = problems(body(target(kind="feishu", signingSecretFrom={"secretKeyRef": {"name": "hooks"}})))
    assert "is required" in found["spec.notify[0].signingSecretFrom.secretKeyRef.key"]
