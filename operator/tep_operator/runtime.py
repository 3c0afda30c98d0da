"""Running the operator: kopf with our registry, settings, login and health endpoint."""

import asyncio
import threading
import time
from typing import Any

import kopf
from kopf._core.engines.peering import Identity  # the NewType of `identity`; kopf does not export it

from tep_operator import handlers, metrics, peering
from tep_operator.client import Kube
from tep_operator.config import OperatorConfig


def build(config: OperatorConfig, kube: Kube) -> kopf.OperatorRegistry:
    """The registry with every handler, plus login and settings for this instance."""
    registry = handlers.build_registry(config, kube)

    @kopf.on.login(id="login", registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        # The same credentials the client module uses: one kubeconfig, one identity. kopf
        # logs in again after a 401, and so gets the renewed token of a token file or plugin.
        c = kube.connection
        certificate, key = c.client_certificate()
        return kopf.ConnectionInfo(
            server=c.server,
            ca_path=c.ca_file,
            ca_data=c.ca_data,
            insecure=c.insecure,
            username=c.username,
            password=c.password,
            token=c.bearer_token(),
            certificate_path=certificate,
            private_key_path=key,
            default_namespace=c.namespace,
        )

    @kopf.on.startup(id="configure", registry=registry)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        handlers.configure(settings, config)

    return registry


def run(
    config: OperatorConfig,
    kube: Kube,
    *,
    stop_flag: threading.Event | None = None,
    ready_flag: threading.Event | None = None,
) -> None:
    """Run the operator until stopped (SIGTERM/SIGINT, or `stop_flag`) in a new event loop."""
    liveness = f"http://0.0.0.0:{config.liveness_port}/healthz" if config.liveness_port else None
    metrics_server = metrics.serve(config.metrics_port) if config.metrics_port else None
    kube.answered = metrics.api_answered
    peering_args: dict[str, Any] = (
        {
            "standalone": False,
            "peering_name": config.peering,
            "priority": peering.start_priority(time.time_ns()),
        }
        if config.peering
        else {"standalone": True}
    )
    try:
        asyncio.run(
            kopf.operator(
                registry=build(config, kube),
                **peering_args,
                # Explicit, so that kopf never calls getpass.getuser() (see OperatorConfig).
                identity=Identity(config.identity),
                clusterwide=not config.namespaces,
                namespaces=config.namespaces,
                liveness_endpoint=liveness,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
            )
        )
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
