"""Helpers of the notification and missed-schedule tests."""

import base64
from typing import Any

from tests.integration.harness import Cluster

REPORTS_URL = "https://reports.example.com/tep"
NOTIFY_CONFIG: dict[str, Any] = {
    "reports_url": REPORTS_URL,
    "notify_timeout_seconds": 2.0,
    "notify_retry_seconds": 6.0,
}
FAILED_TESTS = ["test_login.py::test_expired", "test_a.py::test_b"]


def add_secret(cluster: Cluster, urls: dict[str, str], name: str = "hooks", namespace: str = "qa") -> None:
    data = {key: base64.b64encode(url.encode()).decode() for key, url in urls.items()}
    cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "data": data})


def target(name: str = "team", kind: str = "webhook", key: str = "url", **fields: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, "urlFrom": {"secretKeyRef": {"name": "hooks", "key": key}}, **fields}
