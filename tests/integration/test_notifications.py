"""Notifications from the real operator against the emulator, to a real local HTTP receiver.

`Cluster` plays the CronJob controller, Job controller and kubelet; `Receiver` plays the
chat service (tests/receiver.py). The webhook URL carries a secret token in its path, and
each test checks that the token appears in no log line, no Event and no status.
"""

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

import prometheus_client
import pytest

from tep_operator import names
from tests.emulator import wait_for
from tests.integration.harness import Cluster, make_plan
from tests.integration.notifying import (
    FAILED_TESTS,
    REPORTS_URL,
    add_secret,
    target,
)
from tests.messages import runner_message as summary
from tests.receiver import HANG, Receiver


def create(cluster: Cluster, plan: dict[str, Any]) -> None:
    cluster.create_plan(plan)
    cluster.wait_status(lambda s: s.get("phase") == "Scheduled", name=plan["metadata"]["name"])


def run_once(
    cluster: Cluster, name: str, result: str, minute: int, plan: str = "smoke", **fields: Any
) -> None:
    """A finished scheduled run of `plan`, recorded in its status before this returns."""
    start, end = f"2026-11-21T20:{minute:02d}:00Z", f"2026-11-21T20:{minute:02d}:40Z"
    report = f"qa/{plan}/20261121T20{minute:02d}00Z-{name.rsplit('-', 1)[-1]}/report.html"
    if result == "Passed":
        text = summary(reportPath=report, **fields)
        cluster.start_job(name, cronjob=plan, start=start)
        cluster.finish_pod(name, message=text)
        cluster.finish_job(name, end=end)
    elif result == "Failed":
        text = summary("Failed", passed=7, failed=2, failedTests=FAILED_TESTS, reportPath=report, **fields)
        cluster.start_job(name, cronjob=plan, start=start)
        cluster.finish_pod(name, message=text, exit_code=1, reason="Error")
        cluster.finish_job(name, failed_reason="BackoffLimitExceeded", end=end)
    else:  # Error: the pod was OOM-killed and left no summary
        cluster.start_job(name, cronjob=plan, start=start)
        cluster.finish_pod(name, exit_code=137, reason="OOMKilled")
        cluster.finish_job(name, failed_reason="BackoffLimitExceeded", end=end)
    cluster.wait_status(lambda s: (s.get("lastRun") or {}).get("name") == name, name=plan)


def entries(cluster: Cluster, plan: str = "smoke") -> list[dict[str, Any]]:
    return cluster.status(plan).get("notifications") or []


def delivered(cluster: Cluster, count: int, plan: str = "smoke") -> list[dict[str, Any]]:
    return cluster.wait_status(
        lambda s: len([e for e in s.get("notifications") or [] if e["state"] == "Delivered"]) >= count,
        name=plan,
        message=f"{count} notifications never marked Delivered",
    )["notifications"]


def assert_url_nowhere(cluster: Cluster, receiver: Receiver, logs: pytest.LogCaptureFixture) -> None:
    """The webhook URL's secret is in no log line, no Event and no status (nor anywhere in a plan)."""
    assert receiver.received, "nothing was sent: the check below would prove nothing"
    leaked = [r.getMessage() for r in logs.records if receiver.token in r.getMessage()]
    assert not leaked and receiver.token not in logs.text, leaked
    api = cluster.core.api_client
    events = [api.sanitize_for_serialization(e) for e in cluster.core.list_namespaced_event("qa").items]
    assert events and receiver.token not in json.dumps(events)
    plans = cluster.custom.list_namespaced_custom_object(names.GROUP, names.VERSION, "qa", names.PLURAL)
    assert any((p.get("status") or {}).get("notifications") for p in plans["items"])
    assert receiver.token not in json.dumps(plans)


def expected_bodies() -> dict[str, Any]:
    """The body of each kind for the first failed run `smoke-29012346`, written out as each
    service documents its format."""
    report = f"{REPORTS_URL}/files/qa/smoke/20261121T200100Z-29012346/report.html"
    headline = "TestPlan qa/smoke: Failed"
    md_lines = [
        "**Run**: smoke-29012346 (schedule)",
        "**Result**: Failed, 9 tests, 7 passed, 2 failed",
        "**Failed tests**:",
        "- `test_login.py::test_expired`",
        "- `test_a.py::test_b`",
        f"[Report]({report})",
    ]
    return {
        "webhook": {
            "version": "tep.dev/notification/v1",
            "dedupeKey": "qa/smoke/smoke-29012346/team/Failed",
            "trigger": "Failed",
            "plan": "smoke",
            "namespace": "qa",
            "result": "Failed",
            "reason": "",
            "run": {
                "name": "smoke-29012346",
                "trigger": "schedule",
                "startTime": "2026-11-21T20:01:00Z",
                "completionTime": "2026-11-21T20:01:40Z",
                "durationSeconds": 3.6,
            },
            "dueTime": None,
            "consecutiveFailures": 1,
            "counts": {
                "total": 9,
                "passed": 7,
                "failed": 2,
                "errors": 0,
                "skipped": 0,
                "flaky": 0,
                "xfailed": 0,
                "xpassed": 0,
                "timedOut": 0,
            },
            "failedTests": FAILED_TESTS,
            "flakyTests": [],
            "reportUrl": report,
        },
        # https://api.slack.com/messaging/webhooks: text (the notification fallback) + blocks
        "slack": {
            "text": headline,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": headline}},
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "*Run*: smoke-29012346 (schedule)\n"
                        "*Result*: Failed, 9 tests, 7 passed, 2 failed\n"
                        "*Failed tests*:\n"
                        "- `test_login.py::test_expired`\n"
                        "- `test_a.py::test_b`\n"
                        f"<{report}|Report>",
                    },
                },
            ],
        },
        # Teams incoming webhooks / Workflows: a message with an Adaptive Card attachment
        "teams": {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {
                                "type": "TextBlock",
                                "size": "Medium",
                                "weight": "Bolder",
                                "text": headline,
                                "wrap": True,
                            },
                            {"type": "TextBlock", "text": "\n\n".join(md_lines), "wrap": True},
                        ],
                        "actions": [{"type": "Action.OpenUrl", "title": "Report", "url": report}],
                    },
                }
            ],
        },
        # DingTalk custom robot: msgtype markdown {title, text}
        "dingtalk": {
            "msgtype": "markdown",
            "markdown": {"title": headline, "text": f"#### {headline}\n\n" + "\n\n".join(md_lines)},
        },
        # Feishu/Lark custom bot: msg_type interactive with a card
        "feishu": {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {"title": {"tag": "plain_text", "content": headline}, "template": "red"},
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "\n".join(md_lines)}}],
            },
        },
        # WeCom group robot: msgtype markdown {content}
        "wecom": {"msgtype": "markdown", "markdown": {"content": f"**{headline}**\n" + "\n".join(md_lines)}},
    }


ROBOT_ANSWERS = {"dingtalk": b'{"errcode":0,"errmsg":"ok"}', "wecom": b'{"errcode":0,"errmsg":"ok"}',
                 "feishu": b'{"code":0,"msg":"success","data":{}}'}  # fmt: skip


@pytest.mark.parametrize("kind", ["webhook", "slack", "teams", "dingtalk", "feishu", "wecom"])
def test_each_kind_gets_the_body_its_service_documents(cluster, start_operator, logs, kind):
    with Receiver(answer_body=ROBOT_ANSWERS.get(kind, b"ok")) as receiver:
        add_secret(cluster, {"url": receiver.url})
        start_operator()
        create(cluster, make_plan(notify=[target(kind=kind)]))
        run_once(cluster, "smoke-29012346", "Failed", 1)
        (entry,) = delivered(cluster, 1)
        receiver.settle()
        (request,) = receiver.received
        assert request.body == expected_bodies()[kind]
        assert request.path == f"/hooks/{receiver.token}"
        assert request.headers["Content-Type"] == "application/json; charset=utf-8"
        assert entry == {
            "key": "qa/smoke/smoke-29012346/team/Failed",
            "target": "team",
            "trigger": "Failed",
            "run": "smoke-29012346",
            "consecutiveFailures": 1,
            "state": "Delivered",
            "time": entry["time"],
            "attempts": 1,
        }
        (event,) = wait_for(lambda: cluster.events(reason="NotificationSent"))
        assert event.type == "Normal" and "team" in event.message and "smoke-29012346" in event.message
        assert_url_nowhere(cluster, receiver, logs)


@pytest.mark.parametrize("kind", ["dingtalk", "feishu"])
def test_robots_with_the_signature_setting_get_signed_messages(cluster, start_operator, logs, kind):
    signing_secret = "SEC" + "5f3c9a" * 8
    with Receiver(answer_body=ROBOT_ANSWERS[kind]) as receiver:
        add_secret(cluster, {"url": receiver.url, "sign": signing_secret})
        start_operator()
        signing = {"secretKeyRef": {"name": "hooks", "key": "sign"}}
        create(cluster, make_plan(notify=[target(kind=kind, signingSecretFrom=signing)]))
        run_once(cluster, "smoke-29012346", "Failed", 1)
        delivered(cluster, 1)
        (request,) = receiver.received
        # verified the way the services do: HMAC-SHA256 with the shared secret, a recent timestamp
        if kind == "dingtalk":
            path, _, query = request.path.partition("?")
            fields = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
            stamp = fields["timestamp"]
            digest = hmac.new(signing_secret.encode(), f"{stamp}\n{signing_secret}".encode(), hashlib.sha256)
            assert fields["sign"] == base64.b64encode(digest.digest()).decode()
            assert abs(int(stamp) / 1000 - time.time()) < 60
            assert path == f"/hooks/{receiver.token}" and request.body == expected_bodies()[kind]
        else:
            body = dict(request.body)
            stamp, sign = body.pop("timestamp"), body.pop("sign")
            digest = hmac.new(f"{stamp}\n{signing_secret}".encode(), b"", hashlib.sha256)
            assert sign == base64.b64encode(digest.digest()).decode()
            assert abs(int(stamp) - time.time()) < 60
            assert body == expected_bodies()[kind]
        assert signing_secret not in logs.text
        assert signing_secret not in json.dumps(cluster.plan())
        assert_url_nowhere(cluster, receiver, logs)


def test_a_robot_that_refuses_the_message_is_a_failure(cluster, start_operator, logs):
    """DingTalk answers HTTP 200 with an errcode when it rejects a message (e.g. a keyword missing)."""
    refusal = b'{"errcode":310000,"errmsg":"keywords not in content"}'
    with Receiver(answer_body=refusal) as receiver:
        add_secret(cluster, {"url": receiver.url})
        start_operator()
        create(cluster, make_plan(notify=[target(kind="dingtalk")]))
        run_once(cluster, "smoke-29012346", "Failed", 1)
        (event,) = wait_for(lambda: cluster.events(reason="NotificationFailed"))
        assert "code 310000: keywords not in content" in event.message
        assert len(receiver.received) == 1, "a refusal is final, not retried"
        assert entries(cluster)[0]["state"] == "Failed"
        assert_url_nowhere(cluster, receiver, logs)


def test_transitions_only_by_default(cluster, start_operator, logs):
    with Receiver() as receiver:
        add_secret(cluster, {"url": receiver.url})
        start_operator()
        create(cluster, make_plan(notify=[target()]))
        sequence = ["Failed", "Failed", "Error", "Passed", "Passed", "Error", "Passed"]
        for minute, result in enumerate(sequence):
            run_once(cluster, f"smoke-2901240{minute}", result, minute)
        delivered(cluster, 4)
        receiver.settle()
        got = [(b["trigger"], b["run"]["name"], b["consecutiveFailures"]) for b in receiver.bodies()]
        assert got == [
            ("Failed", "smoke-29012400", 1),
            ("Recovered", "smoke-29012403", 0),
            ("Error", "smoke-29012405", 1),
            ("Recovered", "smoke-29012406", 0),
        ]
        assert cluster.status()["consecutiveFailures"] == 0
        wait_for(lambda: results() == [1, 0, 0] and gauge("tep_consecutive_failures") == 0)
        assert_url_nowhere(cluster, receiver, logs)


def test_after_three_consecutive_failures(cluster, start_operator, logs):
    with Receiver() as receiver:
        add_secret(cluster, {"url": receiver.url})
        start_operator()
        create(cluster, make_plan(notify=[target(after=3)]))
        sequence = ["Failed", "Failed", "Passed", "Failed", "Error", "Failed", "Failed", "Passed"]
        for minute, result in enumerate(sequence):
            run_once(cluster, f"smoke-2901250{minute}", result, minute)
            if minute == 4:
                assert cluster.status()["consecutiveFailures"] == 2
                wait_for(lambda: results() == [0, 0, 1] and gauge("tep_consecutive_failures") == 2)
        delivered(cluster, 2)
        receiver.settle()
        got = [(b["trigger"], b["run"]["name"], b["consecutiveFailures"]) for b in receiver.bodies()]
        # two failures then a pass: silent; the third failure in a row: Failed; then its recovery
        assert got == [("Failed", "smoke-29012505", 3), ("Recovered", "smoke-29012507", 0)]
        assert_url_nowhere(cluster, receiver, logs)


def test_flaky_missed_and_always_triggers_choose(cluster, start_operator, logs):
    with Receiver() as receiver:
        add_secret(cluster, {"url": receiver.url})
        start_operator()
        plan = make_plan(notify=[target("flaky", on=["Flaky"]), target("all", on=["Always"])])
        create(cluster, plan)
        run_once(cluster, "smoke-29012600", "Passed", 0, flaky=1)
        run_once(cluster, "smoke-29012601", "Passed", 1)
        delivered(cluster, 3)
        receiver.settle()
        assert sorted(b["dedupeKey"] for b in receiver.bodies()) == [
            "qa/smoke/smoke-29012600/all/Always",
            "qa/smoke/smoke-29012600/flaky/Flaky",
            "qa/smoke/smoke-29012601/all/Always",
        ]


def test_a_restart_between_the_run_and_the_delivery_delivers_once(cluster, start_operator, logs, free_ports):
    (port,) = free_ports(1)  # nothing listens there yet: connections are refused
    with Receiver() as receiver:
        closed_url = receiver.url.replace(str(receiver.server.server_address[1]), str(port))
        add_secret(cluster, {"url": closed_url})
        first = start_operator(notify_retry_seconds=120)
        create(cluster, make_plan(notify=[target()]))
        run_once(cluster, "smoke-29012346", "Failed", 1)
        (entry,) = entries(cluster)
        assert entry["state"] == "Pending", "the intent is recorded in the same write as the run"
        first.stop()  # while it retries the refused connection
        assert entries(cluster)[0]["state"] == "Pending"
        cluster.core.patch_namespaced_secret(
            "hooks", "qa", {"data": {"url": base64.b64encode(receiver.url.encode()).decode()}}
        )
        second = start_operator()
        delivered(cluster, 1)
        second.stop()
        third = start_operator(resync_seconds=0.3)  # a restart, resyncs and events: nothing new
        cluster.patch_plan({"metadata": {"annotations": {"example.com/touch": "1"}}})
        receiver.settle(2)
        third.stop()
        assert [b["dedupeKey"] for b in receiver.bodies()] == ["qa/smoke/smoke-29012346/team/Failed"]
        assert_url_nowhere(cluster, receiver, logs)


def test_500_twice_then_200_is_one_success(cluster, start_operator, logs):
    with Receiver(answers=[500, 503]) as receiver:
        add_secret(cluster, {"url": receiver.url})
        start_operator()
        create(cluster, make_plan(notify=[target()]))
        run_once(cluster, "smoke-29012346", "Failed", 1)
        (entry,) = delivered(cluster, 1)
        receiver.settle()
        assert [r.answered for r in receiver.received] == [500, 503, 200]
        assert len(receiver.successes()) == 1
        assert len({json.dumps(b, sort_keys=True) for b in receiver.bodies()}) == 1, "the same body each time"
        assert entry["attempts"] == 3
        assert not cluster.events(reason="NotificationFailed")
        assert_url_nowhere(cluster, receiver, logs)


def gauge(name: str, plan: str = "smoke", **labels: str) -> float | None:
    return prometheus_client.REGISTRY.get_sample_value(name, {"namespace": "qa", "plan": plan, **labels})


def results(plan: str = "smoke") -> list[float | None]:
    """tep_last_run_result of Passed, Failed, Error (set right after the status write)."""
    return [gauge("tep_last_run_result", plan, result=r) for r in ("Passed", "Failed", "Error")]


def failures_metric(plan: str, target_name: str, kind: str = "webhook") -> float:
    labels = {"namespace": "qa", "plan": plan, "target": target_name, "kind": kind}
    return prometheus_client.REGISTRY.get_sample_value("tep_notification_failures_total", labels) or 0.0


def test_a_receiver_that_never_answers_is_notification_failed(cluster, start_operator, logs):
    with Receiver(default=HANG) as receiver:
        add_secret(cluster, {"url": receiver.url})
        start_operator(notify_timeout_seconds=0.5, notify_retry_seconds=4.0)
        before = failures_metric("smoke", "team")
        create(cluster, make_plan(notify=[target()]))
        run_once(cluster, "smoke-29012346", "Failed", 1)
        # while that delivery waits and retries, other plans are reconciled and their runs recorded
        create(cluster, make_plan("other"))
        run_once(cluster, "other-29012346", "Passed", 1, plan="other")
        assert entries(cluster)[0]["state"] == "Pending"
        (event,) = wait_for(lambda: cluster.events(reason="NotificationFailed"), timeout=15)
        assert event.type == "Warning"
        assert event.message.startswith("team (webhook) for Failed of smoke-29012346: ")
        assert "did not answer within 0.5s" in event.message or "timed out" in event.message
        (entry,) = entries(cluster)
        assert entry["state"] == "Failed" and entry["attempts"] >= 2 and entry["message"] in event.message
        wait_for(lambda: failures_metric("smoke", "team") == before + 1)
        assert_url_nowhere(cluster, receiver, logs)


def test_a_missing_secret_is_notification_failed(cluster, start_operator):
    start_operator()
    create(cluster, make_plan(notify=[target()]))
    run_once(cluster, "smoke-29012346", "Failed", 1)
    (event,) = wait_for(lambda: cluster.events(reason="NotificationFailed"))
    assert event.message == "team (webhook) for Failed of smoke-29012346: Secret qa/hooks does not exist"
