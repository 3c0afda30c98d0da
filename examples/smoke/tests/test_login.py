"""One-second tests: nine in all, about 9 s serially, a fraction of that with workers."""

import time


def test_login_page_loads(session):
    time.sleep(1)
    assert session["user"] == "qa-bot"


def test_login_accepts_valid_user(session):
    time.sleep(1)
    assert session["user"] == "qa-bot"


def test_login_rejects_bad_password(session):
    time.sleep(1)
    assert session["user"] == "qa-bot"
