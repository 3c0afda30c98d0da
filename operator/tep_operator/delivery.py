"""Delivery of pending notifications: HTTP with retries, off the reconcile path.

A small thread pool sends what the status says is pending (tep_operator.notify), then
marks each entry Delivered or Failed in the status. Each attempt re-reads the plan first,
so a restart, a resync or a second event never sends an entry that is already marked;
only a crash between the send and the mark sends it again (the body carries the dedupe
key for that: at least once, exactly once for a receiver that drops a repeated key).

The URL is read from the Secret just before the send and is never logged, put in an
Event or in the status: errors are described by their kind and status code only. The
standard library's HTTP client is used because it logs nothing (urllib3 logs URLs at DEBUG).
"""

import datetime as dt
import http.client
import json
import logging
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tep_operator import metrics, notify
from tep_operator.client import ApiException, Kube
from tep_operator.config import OperatorConfig
from tep_operator.plan import NotifyTarget, PlanError, read_plan

LOGGER = logging.getLogger("tep_operator.notify")
WORKERS = 4
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "tep-operator"

StatusFn = Callable[[Mapping[str, Any]], dict[str, Any] | None]
WriteStatus = Callable[[Mapping[str, Any], StatusFn], Any]


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    attempts: int
    problem: str = ""  # why it failed, without the URL


def _attempt(url: str, data: bytes, kind: str, timeout: float) -> tuple[bool, bool, str]:
    """One POST: (delivered, worth retrying, problem)."""
    try:
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            problem = notify.response_problem(kind, response.read(MAX_ANSWER_BYTES))
            return problem is None, False, problem or ""
    except urllib.error.HTTPError as exc:
        return False, exc.code >= 500 or exc.code == 429, f"the receiver answered HTTP {exc.code}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        what = (
            "timed out"
            if isinstance(reason, TimeoutError)
            else f"could not connect ({type(reason).__name__})"
        )
        return False, True, f"the request {what}"
    except TimeoutError:
        return False, True, f"the receiver did not answer within {timeout:g}s"
    except http.client.InvalidURL:
        return False, False, "the Secret's value is not a valid URL"
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        return False, True, f"the connection failed ({type(exc).__name__})"
    except ValueError:  # urllib's messages quote the URL: never pass them on
        return False, False, "the Secret's value is not a valid URL"


def post(
    url: str,
    body: Mapping[str, Any],
    kind: str,
    *,
    timeout: float,
    window: float,
    stopping: threading.Event | None = None,
    signing_secret: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> Outcome | None:
    """POST `body` as JSON, retrying 5xx, 429, timeouts and refused connections with
    exponential backoff (1 s, 2 s, 4 s ... at most 30 s) while within `window` seconds.
    None when `stopping` is set while waiting to retry: the operator is shutting down.
    With `signing_secret`, each attempt is signed afresh (notify.signed)."""
    if not url.lower().startswith(("http://", "https://")):
        return Outcome(False, 0, "the Secret's value is not an http(s) URL")
    start, delay, attempts = clock(), FIRST_BACKOFF_SECONDS, 0
    while True:
        attempts += 1
        target, content = (
            notify.signed(kind, url, body, signing_secret, time.time()) if signing_secret else (url, body)
        )
        data = json.dumps(content, ensure_ascii=False).encode()
        delivered, retry, problem = _attempt(target, data, kind, timeout)
        if delivered:
            return Outcome(True, attempts)
        if not retry or clock() - start + delay > window:
            return Outcome(False, attempts, problem)
        if (stopping or threading.Event()).wait(delay):
            return None
        delay = min(delay * 2, MAX_BACKOFF_SECONDS)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Notifier:
    """Sends the pending notifications of plans in the background."""

    def __init__(self, config: OperatorConfig, kube: Kube, write_status: WriteStatus) -> None:
        self.config = config
        self.kube = kube
        self.write_status = write_status
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="tep-notify")
        self.lock = threading.Lock()
        self.in_flight: set[str] = set()
        self.stopping = threading.Event()

    def submit(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Start sending each pending entry of `status` that is not being sent already."""
        for item in notify.pending(status):
            key = str(item["key"])
            with self.lock:
                if key in self.in_flight:
                    continue
                self.in_flight.add(key)
            try:
                self.pool.submit(self._deliver, namespace, name, key)
            except RuntimeError:  # shutting down: the entry stays pending for the next start
                self._done(key)

    def stop(self) -> None:
        """Stop sending; what is not marked yet stays pending for the next start."""
        self.stopping.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _done(self, key: str) -> None:
        with self.lock:
            self.in_flight.discard(key)

    def _deliver(self, namespace: str, name: str, key: str) -> None:
        try:
            self._send(namespace, name, key)
        except Exception as exc:  # a bug: the entry stays pending. Frames only: a message may quote the URL.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            LOGGER.error(
                "Delivering notification %s failed unexpectedly (%s):\n%s", key, type(exc).__name__, frames
            )
        finally:
            self._done(key)

    def _send(self, namespace: str, name: str, key: str) -> None:
        body = self.kube.find_plan(namespace, name)
        if body is None or self.stopping.is_set():
            return
        status = body.get("status") or {}
        item = next((e for e in notify.pending(status) if e.get("key") == key), None)
        if item is None:
            return  # marked already (by an earlier attempt of this or another process)
        target = _target(body, str(item.get("target")))
        if target is None:
            outcome = Outcome(
                False, 0, f"target {item.get('target')!r} is not in the plan's valid spec.notify"
            )
        else:
            url, problem = self._secret(namespace, target.secret_name, target.secret_key)
            signing_secret: str | None = ""
            if url is not None and target.signing_secret_name:
                signing_secret, problem = self._secret(
                    namespace, target.signing_secret_name, target.signing_secret_key
                )
            if url is None or signing_secret is None:
                outcome = Outcome(False, 0, problem)
            else:
                message = notify.notice(item, status, namespace, name, self.config.reports_url)
                sent = post(
                    url,
                    notify.payload(target.kind, message),
                    target.kind,
                    timeout=self.config.notify_timeout_seconds,
                    window=self.config.notify_retry_seconds,
                    stopping=self.stopping,
                    signing_secret=signing_secret,
                )
                if sent is None:
                    return
                outcome = sent
        state = notify.DELIVERED if outcome.delivered else notify.FAILED
        now = _utcnow()
        self.write_status(
            body,
            lambda fresh: notify.mark(
                fresh.get("status") or {}, key, state, now, outcome.attempts, outcome.problem
            ),
        )
        what = f"{item.get('target')} ({target.kind if target else 'unknown kind'}) for {item['trigger']}"
        occasion = item.get("run") or f"the run due at {item.get('dueTime')}"
        if outcome.delivered:
            self.kube.post_event(body, "Normal", "NotificationSent", f"{what} of {occasion}")
            LOGGER.info("%s/%s: notification %s of %s sent", namespace, name, what, occasion)
            return
        metrics.notification_failed(namespace, name, str(item.get("target")), target.kind if target else "")
        text = f"{what} of {occasion}: {outcome.problem}"
        if outcome.attempts:
            text += f" ({outcome.attempts} attempts)"
        self.kube.post_event(body, "Warning", "NotificationFailed", text)
        LOGGER.warning("%s/%s: notification failed: %s", namespace, name, text)

    def _secret(self, namespace: str, name: str, key: str) -> tuple[str | None, str]:
        """A key of a Secret (a URL or a signing secret), stripped; else None and why."""
        where = f"Secret {namespace}/{name}"
        try:
            value = self.kube.read_secret_key(namespace, name, key)
        except ApiException as exc:
            if exc.status == 404:
                return None, f"{where} does not exist"
            if exc.status == 403:
                return None, f"no permission to read {where} (Helm value notifications.enabled)"
            return None, f"reading {where} failed: HTTP {exc.status}"
        if not value:
            return None, f"{where} has no key {key!r}"
        return value.strip(), ""


def _target(body: Mapping[str, Any], name: str) -> NotifyTarget | None:
    try:
        plan = read_plan(body)
    except PlanError:
        return None
    return next((t for t in plan.notify if t.name == name), None)
