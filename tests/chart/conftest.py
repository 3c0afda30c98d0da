from __future__ import annotations

import pytest

from tests.chart.chart_tools import INSTALL_HINT, VALUES_ALL, find_helm, render


@pytest.fixture(scope="session")
def helm() -> str:
    path = find_helm()
    if path is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return path


@pytest.fixture(scope="session")
def default_objects(helm: str) -> list[dict]:
    return render(helm)


@pytest.fixture(scope="session")
def all_objects(helm: str) -> list[dict]:
    return render(helm, "-f", str(VALUES_ALL))
