"""delivery.post against a real local HTTP receiver: retries, their limits, and what is not retried."""

import socket
import threading
import time

from tep_operator import delivery
from tests.receiver import HANG, Receiver

BODY = {"version": "tep.dev/notification/v1", "dedupeKey": "qa/smoke/r/t/Failed"}


def test_5xx_is_retried_with_backoff_until_it_succeeds() -> None:
    with Receiver(answers=[500, 502]) as receiver:
        started = time.monotonic()
        outcome = delivery.post(receiver.url, BODY, "webhook", timeout=2, window=10)
        elapsed = time.monotonic() - started
    assert outcome == delivery.Outcome(True, 3)
    assert [r.answered for r in receiver.received] == [500, 502, 200]
    assert all(r.body == BODY for r in receiver.received)
    assert elapsed >= 3, "waits 1 s, then 2 s"


def test_a_4xx_is_final() -> None:
    with Receiver(default=404) as receiver:
        outcome = delivery.post(receiver.url, BODY, "slack", timeout=2, window=10)
    assert outcome == delivery.Outcome(False, 1, "the receiver answered HTTP 404")


def test_retries_end_with_the_window() -> None:
    with Receiver(default=503) as receiver:
        outcome = delivery.post(receiver.url, BODY, "webhook", timeout=2, window=3.5)
    assert not outcome.delivered and outcome.attempts == 3  # at 0 s, 1 s, 3 s; the next would be at 7 s
    assert outcome.problem == "the receiver answered HTTP 503"


def test_a_refused_connection_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        outcome = delivery.post(
            f"http://127.0.0.1:{port}/hooks/secret", BODY, "webhook", timeout=1, window=1.5
        )
    assert (outcome.delivered, outcome.attempts) == (False, 2)
    assert outcome.problem == "the request could not connect (ConnectionRefusedError)"
    assert "secret" not in outcome.problem and str(port) not in outcome.problem


def test_a_receiver_that_never_answers_times_out() -> None:
    with Receiver(default=HANG) as receiver:
        outcome = delivery.post(receiver.url, BODY, "webhook", timeout=0.3, window=0.5)
    assert (outcome.delivered, outcome.attempts) == (False, 1)
    assert outcome.problem in ("the receiver did not answer within 0.3s", "the request timed out")
    assert receiver.token not in outcome.problem


def test_only_http_urls() -> None:
    outcome = delivery.post("file:///etc/passwd", BODY, "webhook", timeout=1, window=1)
    assert outcome == delivery.Outcome(False, 0, "the Secret's value is not an http(s) URL")


def test_a_shutdown_stops_the_retries() -> None:
    stopping = threading.Event()
    with Receiver(default=500) as receiver:
        threading.Timer(0.3, stopping.set).start()
        started = time.monotonic()
        outcome = delivery.post(receiver.url, BODY, "webhook", timeout=1, window=60, stopping=stopping)
    assert outcome is None and time.monotonic() - started < 5
    assert len(receiver.received) == 1


def test_a_malformed_url_is_final_and_not_quoted() -> None:
    for url in ("http://[::1/hooks/secret-token", "http://127.0.0.1:notaport/hooks/secret-token"):
        outcome = delivery.post(url, BODY, "webhook", timeout=1, window=5)
        assert outcome == delivery.Outcome(False, 1, "the Secret's value is not a valid URL")
