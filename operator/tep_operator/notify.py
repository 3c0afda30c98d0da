"""Notifications: when to send them, the state that makes them exactly-once, and each kind's payload.

Pure. The decisions are made in the same status write that records a run (or a missed
schedule): an entry `Pending` with its dedupe key lands in `status.notifications` together
with the run, so a restart, a resync or a second event finds it there and never adds it again.
The delivery (tep_operator.delivery) sends each pending entry and marks it `Delivered` or
`Failed`. See docs/notifications.md.
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tep_operator.browser import file_url
from tep_operator.plan import NotifyTarget, Plan
from tep_operator.runs import COUNTS
from tep_operator.schedule import isoformat

BODY_VERSION = "tep.dev/notification/v1"
PENDING, DELIVERED, FAILED = "Pending", "Delivered", "Failed"
# Entries kept in status.notifications: the newest ones; pending entries are never dropped.
MAX_ENTRIES = 30
# Counts of a run as the status may carry them; later runner versions add some, read tolerantly.
RUN_COUNTS = (*COUNTS, "xfailed", "xpassed", "timedOut")
MAX_LISTED_TESTS = 10  # per message, so chat messages stay within the services' size limits
MAX_RESPONSE_PROBLEM = 200
FAILING = ("Failed", "Error")


# -- when -------------------------------------------------------------------------------------


def failures_before(old: Mapping[str, Any]) -> int:
    """Consecutive failed (or errored) runs up to the last recorded one."""
    if "consecutiveFailures" in old:
        return int(old.get("consecutiveFailures") or 0)
    last = old.get("lastRun") or {}  # a status from before the field existed
    return 1 if last.get("result") in FAILING else 0


def run_trigger(target: NotifyTarget, run: Mapping[str, Any], before: int) -> str | None:
    """The one trigger of `target` that a newly finished run fires; None for none.

    Failed/Error fire once per failing streak, when it reaches `after` runs; Recovered fires
    on the first pass after a streak that did. Flaky fires on each passing run with flaky
    tests, Always on every run.
    """
    result = run.get("result")
    if result in FAILING:
        if result in target.on and before + 1 == target.after:
            return str(result)
    elif before >= target.after and "Recovered" in target.on:
        return "Recovered"
    if "Flaky" in target.on and result == "Passed" and run.get("flaky"):
        return "Flaky"
    if "Always" in target.on:
        return "Always"
    return None


def dedupe_key(namespace: str, plan: str, occasion: str, target: str, trigger: str) -> str:
    """One notification per plan, run (or missed due time), target and trigger."""
    return f"{namespace}/{plan}/{occasion}/{target}/{trigger}"


def missed_occasion(due: str) -> str:
    return f"missed@{due}"


def entry(
    plan: Plan,
    target: NotifyTarget,
    trigger: str,
    now: dt.datetime,
    *,
    run: str = "",
    due: str = "",
    failures: int | None = None,
) -> dict[str, Any]:
    occasion = run or missed_occasion(due)
    item: dict[str, Any] = {
        "key": dedupe_key(plan.namespace, plan.name, occasion, target.name, trigger),
        "target": target.name,
        "trigger": trigger,
        "state": PENDING,
        "time": isoformat(now),
    }
    if run:
        item["run"] = run
    if due:
        item["dueTime"] = due
    if failures is not None:  # as of the run, whenever the message goes out
        item["consecutiveFailures"] = failures
    return item


def add_entries(
    existing: Sequence[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """`existing` plus the new entries whose key is not there yet, bounded to MAX_ENTRIES."""
    entries = [dict(e) for e in existing]
    keys = {e.get("key") for e in entries}
    entries += [dict(e) for e in new if e["key"] not in keys]
    while len(entries) > MAX_ENTRIES:
        oldest_done = next((i for i, e in enumerate(entries) if e.get("state") != PENDING), None)
        if oldest_done is None:
            break
        del entries[oldest_done]
    return entries


def run_patch(
    plan: Plan, old: Mapping[str, Any], run_patch: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """What to add to the status patch that records a run (runs.record_run's patch):
    consecutiveFailures and the notifications the run fires. Empty for a run that is not
    the newest (found late): it changes neither."""
    run = run_patch.get("lastRun")
    if not run:
        return {}
    before = failures_before(old)
    patch: dict[str, Any] = {"consecutiveFailures": before + 1 if run.get("result") in FAILING else 0}
    intents = [
        entry(plan, target, trigger, now, run=str(run["name"]), failures=patch["consecutiveFailures"])
        for target in plan.notify
        if (trigger := run_trigger(target, run, before))
    ]
    if intents:
        patch["notifications"] = add_entries(old.get("notifications") or [], intents)
    return patch


def missed_patch(plan: Plan, old: Mapping[str, Any], due: str, now: dt.datetime) -> dict[str, Any]:
    """The `Missed` notifications of a schedule missed at `due` (added once per due time)."""
    intents = [entry(plan, target, "Missed", now, due=due) for target in plan.notify if "Missed" in target.on]
    return {"notifications": add_entries(old.get("notifications") or [], intents)} if intents else {}


def pending(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in status.get("notifications") or [] if e.get("state") == PENDING]


def mark(
    status: Mapping[str, Any], key: str, state: str, now: dt.datetime, attempts: int, message: str = ""
) -> dict[str, Any] | None:
    """The patch that records the outcome of a delivery; None if it is no longer pending."""
    entries = [dict(e) for e in status.get("notifications") or []]
    found = next((e for e in entries if e.get("key") == key and e.get("state") == PENDING), None)
    if found is None:
        return None
    found.update(state=state, time=isoformat(now), attempts=attempts)
    if message:
        found["message"] = message
    return {"notifications": entries}


# -- what -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """Everything a message says, from the entry and the plan's status."""

    key: str
    trigger: str
    namespace: str
    plan: str
    run: Mapping[str, Any] = field(default_factory=dict)  # {} for Missed
    due_time: str = ""
    consecutive_failures: int = 0
    report_url: str = ""

    @property
    def result(self) -> str:
        return "Missed" if self.trigger == "Missed" else str(self.run.get("result", ""))


def notice(
    item: Mapping[str, Any], status: Mapping[str, Any], namespace: str, plan: str, reports_url: str
) -> Notice:
    """The notice of a pending entry. The run is status.lastRun, or its (shorter) history
    entry when newer runs came before the delivery."""
    name = item.get("run")
    run: Mapping[str, Any] = {}
    if name:
        candidates = [status.get("lastRun") or {}, *(status.get("history") or [])]
        run = next((r for r in candidates if r.get("name") == name), {"name": name})
    path = str(run.get("reportPath") or "")
    return Notice(
        key=str(item["key"]),
        trigger=str(item["trigger"]),
        namespace=namespace,
        plan=plan,
        run=run,
        due_time=str(item.get("dueTime") or ""),
        consecutive_failures=int(item.get("consecutiveFailures", status.get("consecutiveFailures")) or 0),
        report_url=reports_url.rstrip("/") + file_url(path) if reports_url and path else "",
    )


def webhook_body(n: Notice) -> dict[str, Any]:
    """The generic webhook's JSON body, version tep.dev/notification/v1 (docs/notifications.md)."""
    run = n.run
    return {
        "version": BODY_VERSION,
        "dedupeKey": n.key,
        "trigger": n.trigger,
        "plan": n.plan,
        "namespace": n.namespace,
        "result": n.result,
        "reason": str(run.get("reason") or ""),
        "run": {
            key: run.get(key)
            for key in ("name", "trigger", "startTime", "completionTime", "durationSeconds")
            if run.get(key) is not None
        }
        if run
        else None,
        "dueTime": n.due_time or None,
        "consecutiveFailures": n.consecutive_failures,
        "counts": {key: int(run.get(key) or 0) for key in RUN_COUNTS} if run else None,
        "failedTests": list(run.get("failedTests") or []),
        "flakyTests": list(run.get("flakyTests") or []),
        "reportUrl": n.report_url or None,
    }


def headline(n: Notice) -> str:
    where = f"{n.namespace}/{n.plan}"
    if n.trigger == "Missed":
        return f"TestPlan {where} missed its schedule"
    if n.trigger == "Recovered":
        return f"TestPlan {where} recovered"
    if n.trigger == "Flaky":
        return f"TestPlan {where} passed with flaky tests"
    return f"TestPlan {where}: {n.result}"


def _counts_line(run: Mapping[str, Any]) -> str:
    shown = [key for key in RUN_COUNTS[1:] if run.get(key)]
    return f"{int(run.get('total') or 0)} tests" + "".join(f", {int(run[key])} {key}" for key in shown)


def _lines(n: Notice, bold: str, link: str) -> list[str]:
    """The message body as markdown lines; `bold` and `link` are the service's syntax."""
    if n.trigger == "Missed":
        return [
            f"The run due at {n.due_time} did not start within spec.startingDeadlineSeconds.",
            "Check the CronJob (suspended by hand?) and the kube-controller-manager.",
        ]
    run = n.run
    lines = [f"{bold.format('Run')}: {run.get('name', '')} ({run.get('trigger', 'schedule')})"]
    lines.append(f"{bold.format('Result')}: {n.result}, {_counts_line(run)}")
    if run.get("reason"):
        lines.append(f"{bold.format('Reason')}: {run['reason']}")
    if n.consecutive_failures > 1:
        lines.append(f"{bold.format('Failing for')}: {n.consecutive_failures} runs in a row")
    for title, key in (("Failed tests", "failedTests"), ("Flaky tests", "flakyTests")):
        tests = list(run.get(key) or [])
        if tests:
            lines.append(f"{bold.format(title)}:")
            lines += [f"- `{test}`" for test in tests[:MAX_LISTED_TESTS]]
            if len(tests) > MAX_LISTED_TESTS:
                lines.append(f"- ... and {len(tests) - MAX_LISTED_TESTS} more")
    if n.report_url:
        lines.append(link.format(text="Report", url=n.report_url))
    return lines


def _markdown(n: Notice) -> str:
    return "\n".join(_lines(n, "**{}**", "[{text}]({url})"))


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(n: Notice) -> dict[str, Any]:
    """Slack incoming webhook: `text` (the notification's fallback) and blocks in mrkdwn."""
    lines = _lines(n, "*{}*", "<{url}|{text}>")
    body = "\n".join(line if line.startswith("<http") else _slack_escape(line) for line in lines)
    return {
        "text": _slack_escape(headline(n)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline(n)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
        ],
    }


def teams_body(n: Notice) -> dict[str, Any]:
    """Microsoft Teams (Workflows "when a Teams webhook request is received", and incoming
    webhooks): a message with one Adaptive Card 1.4 attachment."""
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": headline(n), "wrap": True},
            {"type": "TextBlock", "text": "\n\n".join(_lines(n, "**{}**", "[{text}]({url})")), "wrap": True},
        ],
    }
    if n.report_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Report", "url": n.report_url}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def dingtalk_body(n: Notice) -> dict[str, Any]:
    """DingTalk custom robot: msgtype markdown with a title and a markdown text."""
    return {
        "msgtype": "markdown",
        "markdown": {
            "title": headline(n),
            "text": f"#### {headline(n)}\n\n" + "\n\n".join(_lines(n, "**{}**", "[{text}]({url})")),
        },
    }


def feishu_body(n: Notice) -> dict[str, Any]:
    """Feishu / Lark custom bot: an interactive card with a header and a lark_md block."""
    color = "green" if n.trigger == "Recovered" else "orange" if n.trigger in ("Flaky", "Missed") else "red"
    if n.trigger == "Always" and n.result == "Passed":
        color = "green"
    return {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": headline(n)}, "template": color},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": _markdown(n)}}],
        },
    }


WECOM_MAX_BYTES = 4096


def wecom_body(n: Notice) -> dict[str, Any]:
    """WeCom group robot: msgtype markdown with content (at most 4096 bytes)."""
    content = f"**{headline(n)}**\n" + _markdown(n)
    while len(content.encode()) > WECOM_MAX_BYTES:
        content = content[: len(content) - 100]
    return {"msgtype": "markdown", "markdown": {"content": content}}


BUILDERS = {
    "webhook": webhook_body,
    "slack": slack_body,
    "teams": teams_body,
    "dingtalk": dingtalk_body,
    "feishu": feishu_body,
    "wecom": wecom_body,
}


def payload(kind: str, n: Notice) -> dict[str, Any]:
    return BUILDERS[kind](n)


def signed(
    kind: str, url: str, body: Mapping[str, Any], secret: str, now: float
) -> tuple[str, dict[str, Any]]:
    """The URL and body of one attempt, signed with the robot's signing secret as its
    "signature" security setting requires (a fresh timestamp per attempt: both services
    refuse a signature older than an hour).

    DingTalk: `&timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256(key=secret, "<ms>\\n<secret>")>`
    on the URL. Feishu/Lark: `"timestamp": "<s>"` and `"sign": base64 HMAC-SHA256(key="<s>\\n<secret>", "")`
    in the body.
    """
    if kind == "dingtalk":
        stamp = str(int(now * 1000))
        digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
        query = urllib.parse.urlencode({"timestamp": stamp, "sign": base64.b64encode(digest).decode()})
        return f"{url}{'&' if '?' in url else '?'}{query}", dict(body)
    if kind == "feishu":
        stamp = str(int(now))
        digest = hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
        return url, {"timestamp": stamp, "sign": base64.b64encode(digest).decode(), **body}
    return url, dict(body)


def response_problem(kind: str, body: bytes) -> str | None:
    """An error a service reports in a 200 answer (the robots do: errcode / code); None if none."""
    if kind not in ("dingtalk", "wecom", "feishu"):
        return None
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if not code:
        return None
    text = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
    return f"the service answered code {code}: {str(text)[:MAX_RESPONSE_PROBLEM]}"
