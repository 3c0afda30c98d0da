"""The operator's own configuration: defaults for runner pods and how the operator runs.

Read from `TEP_OPERATOR_*` environment variables (the Helm chart sets them); the CLI
flags of `tep operator` override them. See docs/architecture.md for the table.
"""

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_RUNNER_IMAGE = "ghcr.io/tep-dev/tep-runner:0.1.0"
# The pod's name (the chart sets it from the downward API): kopf's identity of this operator.
POD_NAME_ENV = "TEP_OPERATOR_POD_NAME"


class ConfigError(ValueError):
    """A setting of the operator itself is malformed."""


@dataclass(frozen=True)
class OperatorConfig:
    runner_image: str = DEFAULT_RUNNER_IMAGE
    runner_image_pull_policy: str = "IfNotPresent"
    reports_claim: str = "tep-reports"
    runner_resources: Mapping[str, Any] = field(default_factory=dict)
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    liveness_port: int = 8081
    metrics_port: int = 8080
    resync_seconds: float = 60.0
    # Given to kopf explicitly: kopf's own default calls getpass.getuser(), which fails for
    # a numeric user without a passwd entry (the chart's pod runs as uid 10001).
    identity: str = field(default_factory=socket.gethostname)
    # Notifications (docs/notifications.md): the report browser's base URL for links in
    # messages ("" leaves them out), and how long one delivery may take and keep retrying.
    reports_url: str = ""
    notify_timeout_seconds: float = 10.0
    notify_retry_seconds: float = 300.0
    # The KopfPeering (namespaced) / ClusterKopfPeering object of the replicas' leader
    # election (tep_operator.peering); empty: one replica, standalone.
    peering: str = ""


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a whole number") from None


def parse_resources(raw: str, source: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError(f'{source}: must be a JSON object like {{"limits": {{"cpu": "2"}}}}')
    return value


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be more than 0, not {raw}")
    return value


def parse_reports_url(raw: str, source: str) -> str:
    """The report browser's base URL: http(s), no trailing slash; "" for none."""
    url = raw.strip().rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{source}: {raw!r} must start with http:// or https://")
    return url


def config_from_env(environ: Mapping[str, str]) -> OperatorConfig:
    defaults = OperatorConfig()
    namespaces = tuple(
        ns.strip() for ns in environ.get("TEP_OPERATOR_NAMESPACES", "").split(",") if ns.strip()
    )
    pull_policy = environ.get("TEP_OPERATOR_RUNNER_IMAGE_PULL_POLICY") or defaults.runner_image_pull_policy
    if pull_policy not in ("Always", "IfNotPresent", "Never"):
        raise ConfigError(
            f"TEP_OPERATOR_RUNNER_IMAGE_PULL_POLICY: {pull_policy!r} is not Always, IfNotPresent or Never"
        )
    resync = environ.get("TEP_OPERATOR_RESYNC_SECONDS", "")
    try:
        resync_seconds = float(resync) if resync else defaults.resync_seconds
    except ValueError:
        raise ConfigError(f"TEP_OPERATOR_RESYNC_SECONDS: {resync!r} is not a number") from None
    return OperatorConfig(
        runner_image=environ.get("TEP_OPERATOR_RUNNER_IMAGE") or defaults.runner_image,
        runner_image_pull_policy=pull_policy,
        reports_claim=environ.get("TEP_OPERATOR_REPORTS_CLAIM") or defaults.reports_claim,
        runner_resources=parse_resources(
            environ.get("TEP_OPERATOR_RUNNER_RESOURCES", ""), "TEP_OPERATOR_RUNNER_RESOURCES"
        ),
        namespaces=namespaces,
        liveness_port=_int(environ, "TEP_OPERATOR_LIVENESS_PORT", defaults.liveness_port),
        metrics_port=_int(environ, "TEP_OPERATOR_METRICS_PORT", defaults.metrics_port),
        resync_seconds=resync_seconds,
        identity=environ.get(POD_NAME_ENV) or defaults.identity,
        reports_url=parse_reports_url(
            environ.get("TEP_OPERATOR_REPORTS_URL", ""), "TEP_OPERATOR_REPORTS_URL"
        ),
        notify_timeout_seconds=_seconds(
            environ, "TEP_OPERATOR_NOTIFY_TIMEOUT_SECONDS", defaults.notify_timeout_seconds
        ),
        notify_retry_seconds=_seconds(
            environ, "TEP_OPERATOR_NOTIFY_RETRY_SECONDS", defaults.notify_retry_seconds
        ),
        peering=environ.get("TEP_OPERATOR_PEERING", "").strip(),
    )
