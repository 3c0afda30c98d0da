"""Fixtures for integration tests against the in-process Kubernetes API emulator (tests/emulator.py)."""

from collections.abc import Iterator

import pytest

from tests.emulator import Emulator, start_emulator


@pytest.fixture()
def kube() -> Iterator[Emulator]:
    """
    A fresh emulator per test (starting one takes a few milliseconds), with namespaces
    ``default`` and ``qa`` created.  At teardown, the test fails if the emulator had
    unexpected server-side errors (an emulator bug, or an unhandled request shape).
    """
    emulator = start_emulator(namespaces=("default", "qa"))
    try:
        yield emulator
        errors = emulator.server_errors
        assert not errors, f"the emulator had server-side errors: {errors!r}"
    finally:
        emulator.stop()
