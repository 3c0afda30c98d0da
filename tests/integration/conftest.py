"""Fixtures for integration tests against the in-process Kubernetes API emulator (tests/emulator.py)."""

import pathlib
import socket
from collections.abc import Callable, Iterator

import pytest

from tests.emulator import KUBERNETES_MINOR, Emulator, start_emulator
from tests.integration.harness import Cluster, OperatorThread


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
