"""A failing plan's run on a real cluster sends exactly one webhook to a receiver beside the test.

The operator runs as a local process (conftest.py), so a receiver on 127.0.0.1 is reachable
from it. The webhook URL lives in a Secret of the plan's namespace and carries a secret token
that must appear in no operator log line, Event or status.
"""

from __future__ import annotations

import base64
import json
import time

from tests.e2e.test_runs import (
    EXAMPLES,
    SETTLE,
    apply_suspended,
    example_plan,
    job_of,
    output_of,
    prepare_namespace,
    pytestmark,  # noqa: F401 (the same skips and timeout)
    settled_after_run,
    tep_run,
)
from tests.receiver import Receiver


def test_a_failing_run_sends_one_webhook(kubectl, wait_until, tep_namespace, tep_operator):
    ns, name = tep_namespace, "mixed"
    prepare_namespace(kubectl, ns, "mixed-tests", EXAMPLES / "mixed" / "tests")
    with Receiver() as receiver:
        kubectl.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "hooks", "namespace": ns},
                "data": {"url": base64.b64encode(receiver.url.encode()).decode()},
            }
        )
        plan = example_plan("mixed", ns)
        plan["spec"]["notify"] = [
            {"name": "team", "kind": "webhook", "urlFrom": {"secretKeyRef": {"name": "hooks", "key": "url"}}}
        ]
        apply_suspended(kubectl, wait_until, plan)

        proc = tep_run(ns, name)
        assert proc.returncode == 1, f"tep run --wait should exit 1 (a test failed):\n{output_of(proc)}"
        job = job_of(proc)
        wait_until(settled_after_run(kubectl, ns, name, job), SETTLE, "lastRun recorded")
        wait_until(lambda: receiver.received, SETTLE, "a webhook at the receiver")
        time.sleep(15)  # a second (wrong) delivery would arrive by now

        (body,) = receiver.bodies()
        assert body["version"] == "tep.dev/notification/v1"
        assert (body["trigger"], body["result"], body["plan"], body["namespace"]) == (
            "Failed",
            "Failed",
            name,
            ns,
        )
        assert body["run"]["name"] == job and body["dedupeKey"] == f"{ns}/{name}/{job}/team/Failed"
        assert body["counts"]["failed"] >= 1 and any("test_wrong_total" in t for t in body["failedTests"])
        status = kubectl.get("testplan", name, ns)["status"]
        (entry,) = status["notifications"]
        assert entry["state"] == "Delivered" and entry["key"] == body["dedupeKey"]
        assert wait_until(
            lambda: kubectl.events(ns, name, reason="NotificationSent"), SETTLE, "NotificationSent"
        )

        assert receiver.token not in tep_operator.log()
        assert receiver.token not in kubectl("get", "events", "-n", ns, "-o", "json")
        assert receiver.token not in json.dumps(kubectl.get("testplan", name, ns))
