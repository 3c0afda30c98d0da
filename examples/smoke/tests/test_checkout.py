"""One-second tests: nine in all, about 9 s serially, a fraction of that with workers."""

import time


def test_checkout_cart(session):
    time.sleep(1)
    assert session["user"] == "qa-bot"


def test_checkout_payment(session):
    time.sleep(1)
    assert session["user"] == "qa-bot"


def test_checkout_receipt(session):
    time.sleep(1)
    assert session["user"] == "qa-bot"
