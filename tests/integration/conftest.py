"""Fixtures for integration tests against the in-process Kubernetes API emulator (tests/emulator.py)."""

import logging
import pathlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.emulator import KUBERNETES_MINOR, Emulator, start_emulator
from tests.integration.harness import Cluster, OperatorThread
from tests.integration.notifying import NOTIFY_CONFIG


@pytest.fixture()
def kube(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """
    A fresh emulator per test (starting one takes a few milliseconds), with namespaces
    ``default`` and ``qa`` created.  At teardown, the test fails if the emulator had
    unexpected server-side errors (an emulator bug, or an unhandled request shape).
    Parametrize it indirectly with a Kubernetes 1.x to emulate another version
    (``@pytest.mark.parametrize("kube", [26, 30], indirect=True)``).
    """
    minor = getattr(request, "param", KUBERNETES_MINOR)
    emulator = start_emulator(namespaces=("default", "qa"), kubernetes_minor=minor)
    try:
        yield emulator
        errors = emulator.server_errors
        assert not errors, f"the emulator had server-side errors: {errors!r}"
    finally:
        emulator.stop()


@pytest.fixture()
def cluster(kube: Emulator) -> Cluster:
    """Typed access to the emulator, and the controllers it lacks (tests/integration/harness.py)."""
    return Cluster(kube)


@pytest.fixture()
def operator(kube: Emulator, tmp_path: pathlib.Path) -> Iterator[OperatorThread]:
    """The real operator (tep_operator.runtime.run) in its own thread, against the emulator."""
    with OperatorThread(kube, tmp_path) as running:
        yield running


@pytest.fixture()
def free_ports() -> Callable[[int], list[int]]:
    """Ports free on 127.0.0.1 right now, for servers a test starts."""

    def ports(count: int) -> list[int]:
        sockets = [socket.socket() for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        found = [sock.getsockname()[1] for sock in sockets]
        for sock in sockets:
            sock.close()
        return found

    return ports


# -- notifications and missed schedules (test_notifications.py, test_missed.py) ----------------


@pytest.fixture()
def start_operator(kube: Emulator, tmp_path: pathlib.Path) -> Iterator[Callable[..., OperatorThread]]:
    """Start operators with the notification settings of the tests (and `config`); all stopped at the end."""
    running: list[OperatorThread] = []

    def start(**config: Any) -> OperatorThread:
        operator = OperatorThread(kube, tmp_path, **{**NOTIFY_CONFIG, **config}).start()
        running.append(operator)
        return operator

    yield start
    for operator in running:
        if operator.thread.is_alive():
            operator.stop()


@pytest.fixture()
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record of the operator (it runs in this process), DEBUG and up."""
    caplog.set_level(logging.DEBUG)
    return caplog
