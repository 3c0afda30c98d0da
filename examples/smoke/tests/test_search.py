"""One-second tests: nine in all, about 9 s serially, a fraction of that with workers."""

import time


def test_search_finds_item(session):
    time.sleep(1)
    assert session["user"] == "qa-bot"


def test_search_empty_query(session):
    time.sleep(1)
    assert session["user"] == "qa-bot"


def test_search_paginates(session):
    time.sleep(1)
    assert session["user"] == "qa-bot"
