"""The operator (a real `python -m tep_operator` process) through faults, with 20 plans whose
runs the test plays as Kubernetes' controllers would (tests/faults/harness.py).

After each scenario: every finished Job is in its plan's history exactly once with its
counts, no run request is lost or run twice, each plan has exactly one CronJob, the log has
no error and names what the operator recovered. Each scenario records its runs, kills and
restarts (printed in the terminal summary by tests/faults/conftest.py).
"""

import pathlib
import random
import re
import time
from collections.abc import Callable

import pytest

from tests.emulator import Emulator
from tests.faults.conftest import SUMMARY_PROPERTY
from tests.faults.harness import NAMESPACE, Estate, OperatorProcess, log_errors
from tests.integration.harness import operator_kubeconfig
from tests.operator_log import KOPF_SHUTDOWN_RETRY as KOPF_RETRY

PLANS = 20
CATCH_UP_SECONDS = 60
LATENCY_SECONDS = 0.05
RECOVERED = re.compile(r"Recovered run (\S+) of")
# Where a SIGKILL lands: right after a Job finished (before the operator wrote its status);
# on the status write, before it lands or after it landed (the operator never heard); on the
# Job of a run request, before or after it was created.
KILL_POINTS = (
    ("after a Job finished", None),
    ("before a status write", ("patch", "testplans", "status", "before")),
    ("after a status write", ("patch", "testplans", "status", "after")),
    ("before a run request's Job", ("create", "jobs", None, "before")),
    ("after a run request's Job", ("create", "jobs", None, "after")),
)


def started(emulator: Emulator, tmp_path: pathlib.Path, identity: str = "tep-operator-0") -> OperatorProcess:
    kubeconfig = operator_kubeconfig(emulator, tmp_path / "kubeconfig", (NAMESPACE,))
    return OperatorProcess(kubeconfig, tmp_path / f"{identity}.log", identity).start()


def settle(estate: Estate, keep_alive: Callable[[], object] = lambda: None) -> None:
    """Every plan Scheduled with its CronJob: the operator has taken the estate over."""
    estate.wait(
        lambda: (
            all(s.get("phase") == "Scheduled" for s in estate.statuses().values())
            and len(estate.cluster.cronjobs("faults")) == len(estate.plans)
        ),
        CATCH_UP_SECONDS,
        "every plan Scheduled with its CronJob",
        keep_alive,
    )


def play(estate: Estate, runs: int, operator: Callable[[], object],
         between: Callable[[int], None] = lambda i: None) -> None:  # fmt: skip
    """`runs` runs round-robin over the plans, scheduled and requested in turn."""
    for i in range(runs):
        between(i)
        operator()
        plan = estate.plans[i % len(estate.plans)]
        if (i // len(estate.plans)) % 2:
            estate.run_requested(plan, estate.request_run(plan), operator)
        else:
            estate.scheduled_run(plan)


def verify(
    estate: Estate, operator: OperatorProcess, keep_alive: Callable[[], object], *, api_failing: bool = False
) -> str:
    """The checks after every scenario; the operator's log. With `api_failing`, kopf's own
    retries of its watch requests (which it logs at ERROR) are expected."""
    try:
        estate.wait(estate.all_recorded, CATCH_UP_SECONDS, "every run recorded", keep_alive)
    except AssertionError as exc:
        warnings = [line for line in operator.log().splitlines() if " WARNING " in line or " ERROR " in line]
        raise AssertionError(f"{exc}: {estate.problems()}\n" + "\n".join(warnings[-30:])) from None
    assert estate.problems() == []
    log = operator.log()
    errors = [(n, line) for n, line in log_errors(log) if not (api_failing and KOPF_RETRY.search(line))]
    assert errors == [], f"the operator logged errors:\n{errors}"
    finished = {run.job for run in estate.finished}
    recovered = set(RECOVERED.findall(log))
    assert recovered <= finished, f"recovered runs nobody ran: {recovered - finished}"
    return log


def test_sigkill_at_random_points(
    emulator: Emulator, tmp_path: pathlib.Path, record_property: Callable[[str, object], None]
) -> None:
    rng = random.Random(12)
    estate = Estate(emulator, PLANS)
    operator = started(emulator, tmp_path)
    settle(estate)
    runs, kill_every = 100, 8
    points: dict[str, int] = {}

    def between(i: int) -> None:
        if i % kill_every != kill_every - 1:
            return
        name, trigger = rng.choice(KILL_POINTS)
        points[name] = points.get(name, 0) + 1
        if trigger is None:
            operator.kill()  # the previous run's Job just finished
        else:
            verb, plural, subresource, when = trigger
            emulator.on_request(verb, plural, operator.kill_now, subresource=subresource, when=when)

    play(estate, runs, operator.ensure_running, between)
    emulator.clear_triggers()
    operator.ensure_running()
    log = verify(estate, operator, operator.ensure_running)
    assert operator.kills >= runs // kill_every // 2, f"too few kills landed: {operator.kills}"
    recovered = RECOVERED.findall(log)
    assert recovered, "the operator never logged a run it recovered"
    record_property(
        SUMMARY_PROPERTY,
        f"{len(estate.finished)} runs, {operator.kills} kills, {operator.starts - 1} restarts, "
        f"{len(recovered)} runs recovered; kill points {points}",
    )
    operator.stop()


@pytest.mark.parametrize(
    "fault",
    ["api-restart", "watch-drop", "429", "503", "latency"],
)
def test_api_faults(
    fault: str, emulator: Emulator, tmp_path: pathlib.Path, record_property: Callable[[str, object], None]
) -> None:
    estate = Estate(emulator, PLANS)
    operator = started(emulator, tmp_path)
    settle(estate)
    runs, faults = 40, 0

    def between(i: int) -> None:
        nonlocal faults
        if fault == "latency":
            if i == 0:
                emulator.set_latency(LATENCY_SECONDS)
        elif i % 8 == 4:
            faults += 1
            if fault == "api-restart":
                emulator.restart()
            elif fault == "watch-drop":
                emulator.drop_watches()
            elif fault in ("429", "503"):
                reason = "TooManyRequests" if fault == "429" else "ServiceUnavailable"
                emulator.fail_requests(1.5, int(fault), reason)

    play(estate, runs, operator.ensure_running, between)
    emulator.set_latency(0)
    log = verify(estate, operator, lambda: None, api_failing=fault in ("429", "503"))
    assert operator.starts == 1, "the operator died"
    recovered = len(RECOVERED.findall(log))
    what = (
        f"{LATENCY_SECONDS * 1000:.0f} ms on every request"
        if fault == "latency"
        else f"{faults} {fault} faults"
    )
    record_property(
        SUMMARY_PROPERTY,
        f"{len(estate.finished)} runs, {what}, 0 kills, 0 restarts, "
        f"{recovered} runs recovered by a re-list or the resync",
    )
    operator.stop()


PEERING = "tep-operator"
TAKEOVER_SECONDS = 15
HANDLED = re.compile(r"Handler '\w+' succeeded")


def test_two_replicas_one_acts_and_the_standby_takes_over(
    emulator: Emulator, tmp_path: pathlib.Path, record_property: Callable[[str, object], None]
) -> None:
    """Leader election (kopf's peering, tep_operator.peering): with two operator processes
    only the older acts; SIGKILLed, the standby takes over within TAKEOVER_SECONDS."""
    estate = Estate(emulator, PLANS)
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}}
    estate.cluster.custom.create_namespaced_custom_object("kopf.dev", "v1", "faults", "kopfpeerings", peering)
    kubeconfig = operator_kubeconfig(emulator, tmp_path / "kubeconfig", (NAMESPACE,), replicas=2)
    leader = OperatorProcess(kubeconfig, tmp_path / "a.log", "tep-operator-a", PEERING).start()
    settle(estate)
    standby = OperatorProcess(kubeconfig, tmp_path / "b.log", "tep-operator-b", PEERING).start()

    def keepalives() -> dict[str, object]:
        body = estate.cluster.custom.get_namespaced_custom_object(
            "kopf.dev", "v1", "faults", "kopfpeerings", PEERING
        )
        return dict(body.get("status") or {})

    estate.wait(lambda: {"tep-operator-a", "tep-operator-b"} <= set(keepalives()), 30, "both keep-alives")
    play(estate, 40, lambda: None)  # both alive: the leader does everything
    estate.wait(estate.all_recorded, CATCH_UP_SECONDS, "every run recorded by the leader")
    time.sleep(6)  # a resync period: the standby's resync must stay idle too
    assert not HANDLED.search(standby.log()), "the standby handled events while the leader lived"
    assert "Resuming operations" not in standby.log()
    assert not re.search(r"Applied CronJob|Started Job|Recovered", standby.log())

    leader.kill()
    killed = time.monotonic()
    plan = estate.plans[0]
    value = estate.request_run(plan)
    estate.run_requested(plan, value, lambda: None, timeout=TAKEOVER_SECONDS + 15)
    takeover = time.monotonic() - killed
    assert takeover <= TAKEOVER_SECONDS, f"the standby took {takeover:.1f} s to act"
    play(estate, 20, lambda: None)
    verify(estate, standby, lambda: None)
    assert not log_errors(leader.log())
    record_property(
        SUMMARY_PROPERTY,
        f"{len(estate.finished)} runs, 1 kill (the leader), 0 restarts, takeover {takeover:.1f} s "
        f"(target <= {TAKEOVER_SECONDS} s); the standby idle while the leader lived",
    )
    standby.stop()
