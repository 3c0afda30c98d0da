"""A session fixture that every xdist worker shares: the setup runs once per run, not once per worker."""

import time

import pytest

from tep_runner.once import run_once


def _login():
    time.sleep(0.2)  # stands in for a real login
    return {"user": "qa-bot", "token": f"token-{time.time_ns()}"}


@pytest.fixture(scope="session")
def session():
    return run_once("smoke-login", _login)
