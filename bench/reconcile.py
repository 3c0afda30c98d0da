"""Benchmark: how fast the operator turns N TestPlans into CronJobs and `phase: Scheduled`.

    python bench/reconcile.py [--plans 500] [--mode both|live|cold] [--kubeconfig PATH]

The operator runs as a separate process (`python -m tep_operator`), so its peak RSS is its
own; it talks HTTP to the Kubernetes API: by default an in-process emulator
(tests/emulator.py) served from this process, or any cluster with --kubeconfig (then each
phase works in a fresh namespace that is deleted afterwards; the TestPlan CRD is installed
from crds/ if missing and removed again at the end).

Phases, each on a fresh server (a fresh emulator, or a fresh namespace):

- plain: a plain `kubernetes` client creates the N CronJobs the operator would render
  (`render_cronjob(read_plan(plan), config)`, rendered before the clock starts), one
  request after another: the baseline.
- live:  the operator is running and ready; a plain client creates the N TestPlans one
  after another, as fast as it can. Clock: from the first create to the moment every
  plan has its CronJob AND `status.phase == Scheduled`.
- cold:  the N TestPlans exist first; then the operator starts. Clock: from the moment
  the operator is ready (its /healthz answers) to the same end point; the figure that
  includes process start-up is printed beside it.

Completion is read every --poll seconds: from the emulator's own store, or on a cluster from
one watch per kind of the namespace's CronJobs and TestPlans (`Follower`), never N GETs or a
LIST per poll.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # the repository's root

import kmock
import kubernetes
import kubernetes.watch
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tep_operator import names
from tep_operator.client import LIST_PAGE_SIZE
from tep_operator.config import OperatorConfig, config_from_env
from tep_operator.cronjob import render_cronjob
from tep_operator.plan import read_plan
from tests.emulator import Emulator, start_emulator

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRD_FILE = ROOT / "crds" / "testplans.tep.dev.yaml"
CRD_NAME = "testplans.tep.dev"

OPERATOR_COMMAND = (sys.executable, "-m", "tep_operator")

TARGET_RATIO = 0.5  # operator plans/s over plain-client CronJobs/s
TARGET_RSS_MB = 300.0  # operator peak RSS at 10,000 plans (and so at fewer)
TARGET_RESTART_WRITES = 0  # writes a restart sends for unchanged plans
TARGET_STEADY_SECONDS = 60.0  # restart: process start to steady state
QUIET_SECONDS = 2.0  # steady: the operator used under QUIET_CPU of CPU for this long
QUIET_CPU = 0.05
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


# --------------------------------------------------------------------------------------------------
# Where the API is: a fresh emulator per phase, or a fresh namespace of a real cluster per phase.
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Server:
    """One fresh place to work in: an API client, a kubeconfig for the operator, a namespace."""

    api: kubernetes.client.ApiClient
    kubeconfig: pathlib.Path
    namespace: str
    close: Callable[[], None]
    # (names of the CronJobs, names of the Scheduled plans), read without serialising every
    # object: a LIST of N objects per poll would make the poller, not the operator, the
    # figure at 10,000 plans. The emulator's store, or a cluster's watches (Follower).
    probe: Callable[[], tuple[set[str], set[str]]]
    # Requests served so far by (verb, plural): the emulator counts them; None on a cluster
    # (the operator's own count is read from its metrics instead).
    request_counts: Callable[[], dict[tuple[str, str], int]] | None = None

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.api)

    @property
    def batch(self) -> kubernetes.client.BatchV1Api:
        return kubernetes.client.BatchV1Api(self.api)


@contextlib.contextmanager
def emulator_server(workdir: pathlib.Path, label: str) -> Iterator[Server]:
    namespace = "bench"
    emulator: Emulator = start_emulator(namespaces=(namespace,))
    try:
        kubeconfig = emulator.kubeconfig(workdir / f"kubeconfig-{label}")
        yield Server(
            emulator.api_client(), kubeconfig, namespace, emulator.stop,
            lambda: emulator.call(lambda: emulated_progress(emulator, namespace)), emulator.request_counts,
        )  # fmt: skip
        errors = emulator.server_errors
        if errors:
            print(f"  warning: the emulator had server-side errors: {errors[:3]!r}", file=sys.stderr)
    finally:
        emulator.stop()


@contextlib.contextmanager
def cluster_server(kubeconfig: pathlib.Path, label: str) -> Iterator[Server]:
    api = cluster_client(kubeconfig)
    core = kubernetes.client.CoreV1Api(api)
    namespace = f"tep-bench-{label}-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": namespace}})
    follower = Follower(api, namespace)
    try:
        yield Server(api, kubeconfig, namespace, follower.stop, follower.progress)
    finally:
        follower.stop()
        core.delete_namespace(namespace, propagation_policy="Background")


class Follower:
    """A cluster namespace's CronJobs and Scheduled plans, by name, as one watch per kind (a
    thread each) tells them: the completion probe of a cluster. Polling LISTs instead would
    serialise every object per poll (at 10,000 plans, twenty pages per kind, every few seconds:
    load on the API server and on this process that would be part of the figure). It starts at
    the first `progress()`, and answers once each kind is listed: ask it once before a clock
    starts; until then it costs this process nothing (the plain client's phase)."""

    KINDS: ClassVar[dict[str, tuple[str, str]]] = {
        "cronjobs": ("batch", "v1"),
        names.PLURAL: (names.GROUP, names.VERSION),
    }

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api)  # any group's objects, as dicts
        self.namespace = namespace
        self.names: dict[str, set[str]] = {plural: set() for plural in self.KINDS}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.listed = {plural: threading.Event() for plural in self.KINDS}
        self.started = False
        self.error: BaseException | None = None
        self.threads = [
            threading.Thread(target=self._follow, args=(plural,), daemon=True, name=f"follow-{plural}")
            for plural in self.KINDS
        ]

    @staticmethod
    def counts(plural: str, obj: dict[str, Any]) -> bool:
        """Whether the object is one the probe counts: any CronJob, a plan that is Scheduled."""
        return plural == "cronjobs" or (obj.get("status") or {}).get("phase") == "Scheduled"

    def _follow(self, plural: str) -> None:
        try:
            self._watch(plural)
        except BaseException as exc:  # said by the next progress()
            self.error = exc
            self.listed[plural].set()

    def _watch(self, plural: str) -> None:
        group, version = self.KINDS[plural]
        args = (group, version, self.namespace, plural)
        while not self.stopping.is_set():
            listing = self.custom.list_namespaced_custom_object(*args)  # started first: few objects
            counted = {o["metadata"]["name"] for o in listing["items"] if self.counts(plural, o)}
            with self.lock:
                self.names[plural] = counted
            version_seen = listing["metadata"]["resourceVersion"]
            self.listed[plural].set()
            watch = kubernetes.watch.Watch()
            try:
                while not self.stopping.is_set():
                    for event in watch.stream(
                        self.custom.list_namespaced_custom_object, *args,
                        resource_version=version_seen, timeout_seconds=5,
                    ):  # fmt: skip
                        obj, name = event["object"], event["object"]["metadata"]["name"]
                        with self.lock:
                            if event["type"] != "DELETED" and self.counts(plural, obj):
                                self.names[plural].add(name)
                            else:
                                self.names[plural].discard(name)
                    version_seen = watch.resource_version or version_seen
            except kubernetes.client.ApiException as exc:
                if exc.status != 410:  # 410 Gone: the watch's resourceVersion is too old; list again
                    raise

    def progress(self) -> tuple[set[str], set[str]]:
        if not self.started:
            self.started = True
            for thread in self.threads:
                thread.start()
            for plural, listed in self.listed.items():
                if not listed.wait(60):
                    raise RuntimeError(f"listing the {plural} of {self.namespace} took over 60 s")
        if self.error is not None:
            raise RuntimeError(f"following the objects of {self.namespace} failed") from self.error
        with self.lock:
            return set(self.names["cronjobs"]), set(self.names[names.PLURAL])

    def stop(self) -> None:
        self.stopping.set()


def cluster_client(kubeconfig: pathlib.Path) -> kubernetes.client.ApiClient:
    """The plain client of a cluster (the `kubernetes` package, of the test extra)."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


def ensure_crd(kubeconfig: pathlib.Path) -> bool:
    """Install the TestPlan CRD if missing; True if this call installed it."""
    api = cluster_client(kubeconfig)
    ext = kubernetes.client.ApiextensionsV1Api(api)
    try:
        ext.read_custom_resource_definition(CRD_NAME)
        return False
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
    ext.create_custom_resource_definition(yaml.safe_load(CRD_FILE.read_text()))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(CRD_NAME)
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
            return True
        time.sleep(0.5)
    raise RuntimeError(f"CRD {CRD_NAME} not Established after 60 s")


def remove_crd(kubeconfig: pathlib.Path) -> None:
    api = cluster_client(kubeconfig)
    kubernetes.client.ApiextensionsV1Api(api).delete_custom_resource_definition(CRD_NAME)


# --------------------------------------------------------------------------------------------------
# The operator in its own process, with its RSS sampled.
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) of a process, in kB; {} once it is gone."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


class OperatorProcess:
    """`python -m tep_operator` against `kubeconfig`, watching one namespace.

    The liveness endpoint is on a free port (instead of 0: off) so that readiness can be seen
    from outside, as a kubelet would; metrics too, for the operator's own count of its API
    requests on a cluster. Logs go to `log_path`.
    """

    def __init__(
        self,
        kubeconfig: pathlib.Path,
        namespace: str,
        log_path: pathlib.Path,
        command: Sequence[str] = OPERATOR_COMMAND,
    ) -> None:
        self.command = list(command)
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.ready_at = 0.0
        self.peak_rss_kb = 0  # the highest VmRSS sampled, then max'ed with VmHWM at stop
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def start(self, timeout: float = 60) -> OperatorProcess:
        command = [
            *self.command,
            "--kubeconfig", str(self.kubeconfig),
            "--namespace", self.namespace,
            "--liveness-port", str(self.port),
            "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        log = self.log_path.open("wb")
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()
        self._sampler.start()
        url = f"http://127.0.0.1:{self.port}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        self.ready_at = time.perf_counter()
                        return self
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the operator was not ready within {timeout} s:\n{self.log_tail()}")

    def api_requests(self) -> dict[str, int]:
        """By verb, the requests the operator's client sent (its tep_api_requests_total;
        kopf's watches and the listings that start them are not among them)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        verbs: dict[str, int] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "tep_api_requests_total":
                    verb = sample.labels["verb"]
                    verbs[verb] = verbs.get(verb, 0) + int(sample.value)
        return verbs

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    @property
    def startup_seconds(self) -> float:
        return self.ready_at - self.spawned_at

    def _sample(self) -> None:
        assert self.proc is not None
        while not self._sampling.wait(0.05):
            rss = read_proc_status(self.proc.pid).get("VmRSS", 0)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)

    def rss_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB."""
        assert self.proc is not None
        values = read_proc_status(self.proc.pid)
        self.peak_rss_kb = max(self.peak_rss_kb, values.get("VmHWM", 0), values.get("VmRSS", 0))
        return values.get("VmRSS", 0) / 1024, self.peak_rss_kb / 1024

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.rss_mb()  # VmHWM is gone once the process is
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._sampling.set()
        self._sampler.join(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def operator_config(namespace: str) -> OperatorConfig:
    """The configuration the operator process ends up with (same environment, same flags)."""
    return dataclasses.replace(
        config_from_env(os.environ), namespaces=(namespace,), liveness_port=0, metrics_port=0
    )


# --------------------------------------------------------------------------------------------------
# Plans, and waiting for the operator by LISTing.
# --------------------------------------------------------------------------------------------------


def plan_name(index: int) -> str:
    return f"plan-{index:05d}"


def plan_body(index: int, namespace: str) -> dict[str, Any]:
    name = plan_name(index)
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "crontab": f"{index % 60} */2 * * *",
            "source": {"configMap": {"name": f"{name}-tests"}},
        },
    }


def create_plans(server: Server, count: int) -> list[dict[str, Any]]:
    custom = server.custom
    return [
        json.loads(
            custom.create_namespaced_custom_object(
                names.GROUP, names.VERSION, server.namespace, names.PLURAL,
                plan_body(i, server.namespace), _preload_content=False,
            ).data
        )
        for i in range(count)
    ]  # fmt: skip


def list_items(server: Server, kind: str) -> list[dict[str, Any]]:
    """Every object of a kind in the namespace, in pages (a real API server's limits)."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        if kind == "cronjobs":
            call: Callable[..., Any] = server.batch.list_namespaced_cron_job
            args: tuple[Any, ...] = (server.namespace,)
        else:
            call = server.custom.list_namespaced_custom_object
            args = (names.GROUP, names.VERSION, server.namespace, names.PLURAL)
        page = json.loads(call(*args, limit=LIST_PAGE_SIZE, _continue=token, _preload_content=False).data)
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def emulated_progress(emulator: Emulator, namespace: str) -> tuple[set[str], set[str]]:
    """In the emulator's thread: its stored CronJobs and Scheduled plans, by name."""
    handler = emulator.handler
    cronjobs = handler._by_place.get((kmock.resource("batch", "v1", "cronjobs"), namespace), {})
    plans = handler._by_place.get((kmock.resource(names.GROUP, names.VERSION, names.PLURAL), namespace), {})
    scheduled = {name for name, p in plans.items() if (p.get("status") or {}).get("phase") == "Scheduled"}
    return set(cronjobs), scheduled


def progress(server: Server, wanted: set[str], wanted_cronjobs: set[str]) -> tuple[int, int]:
    """(plans with their CronJob, plans with phase Scheduled) among the `wanted` plans, whose
    CronJobs are `wanted_cronjobs`."""
    cronjobs, scheduled = server.probe()
    return len(wanted_cronjobs & cronjobs), len(wanted & scheduled)


def wait_until_done(
    server: Server, count: int, poll: float, timeout: float, operator: OperatorProcess
) -> float:
    """Poll until every plan has its CronJob and phase Scheduled; the perf_counter() then."""
    deadline = time.monotonic() + timeout
    done = (0, 0)
    # made once: at 10,000 plans, making them per poll held the emulator's GIL for a while
    wanted = {plan_name(i) for i in range(count)}
    wanted_cronjobs = {names.cronjob_name(n) for n in wanted}
    while time.monotonic() < deadline:
        done = progress(server, wanted, wanted_cronjobs)
        if done == (count, count):
            return time.perf_counter()
        if operator.proc is not None and operator.proc.poll() is not None:
            raise RuntimeError(f"the operator exited ({operator.proc.returncode}):\n{operator.log_tail()}")
        time.sleep(poll)
    raise RuntimeError(
        f"after {timeout} s only {done[0]} CronJobs and {done[1]} Scheduled of {count}:\n"
        + operator.log_tail()
    )


# --------------------------------------------------------------------------------------------------
# The phases.
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class OperatorResult:
    mode: str
    seconds: float  # the clock of the mode (see the module docstring)
    create_seconds: float  # live: the client's creates; cold: creating the plans before start
    startup_seconds: float  # process spawn to /healthz answering
    peak_rss_mb: float
    settled_rss_mb: float
    operator_cpu: float  # CPU seconds of the operator process until done
    server_cpu: float  # CPU seconds of this process (emulator, client, polls) until done
    requests: dict[str, int]  # by verb, the operator's requests until done

    def rate(self, count: int) -> float:
        return count / self.seconds


@dataclasses.dataclass
class RestartResult:
    writes: int  # objects of the namespace changed or added (TestPlans, CronJobs, Jobs, Events)
    changed: list[str]  # what changed, a few of them
    next_run_moved: int  # plans whose only change is nextRunTime (their run time passed meanwhile)
    requests: dict[str, int]  # by verb
    steady_seconds: float  # process start until its CPU went quiet
    peak_rss_mb: float


def run_plain(server: Server, count: int) -> float:
    """Seconds for a plain client to create the operator's N CronJobs, one after another."""
    config = operator_config(server.namespace)
    manifests = [render_cronjob(read_plan(plan), config) for plan in create_plans(server, count)]
    batch = server.batch
    started = time.perf_counter()
    for manifest in manifests:
        batch.create_namespaced_cron_job(server.namespace, manifest, _preload_content=False)
    seconds = time.perf_counter() - started
    if len(list_items(server, "cronjobs")) != count:
        raise RuntimeError("the plain client's CronJobs are not all there")
    return seconds


def requests_now(server: Server, operator: OperatorProcess | None) -> dict[str, int]:
    """By verb: the requests the emulator has served so far (everybody's), or on a cluster the
    ones the running `operator` counted (none before it runs)."""
    if server.request_counts is None:
        return operator.api_requests() if operator is not None else {}
    verbs: dict[str, int] = {}
    for (verb, _), n in server.request_counts().items():
        verbs[verb] = verbs.get(verb, 0) + n
    return verbs


def since(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {verb: n - before.get(verb, 0) for verb, n in sorted(after.items()) if n - before.get(verb, 0)}


def run_operator(
    server: Server,
    count: int,
    mode: str,
    workdir: pathlib.Path,
    poll: float,
    timeout: float,
    command: Sequence[str] = OPERATOR_COMMAND,
) -> OperatorResult:
    log = workdir / f"operator-{mode}.log"
    operator = OperatorProcess(server.kubeconfig, server.namespace, log, command)
    server.probe()  # a cluster's watches start before any clock
    try:
        if mode == "live":
            operator.start()
            cpu_before = operator.cpu_seconds()
            here_before = time.process_time()
            requests_before = requests_now(server, operator)
            started = time.perf_counter()
            create_plans(server, count)
            create_seconds = time.perf_counter() - started
        else:
            before = time.perf_counter()
            create_plans(server, count)
            create_seconds = time.perf_counter() - before
            here_before = time.process_time()
            requests_before = requests_now(server, None)
            operator.start()
            cpu_before = 0.0  # start-up is part of a cold start
            started = operator.ready_at
        done = wait_until_done(server, count, poll, timeout, operator)
        operator_cpu = operator.cpu_seconds() - cpu_before
        here_cpu = time.process_time() - here_before
        requests = since(requests_now(server, operator), requests_before)
        if mode == "live" and server.request_counts is not None:  # the emulator served our creates too
            requests = since(requests, {"create": count})
        time.sleep(2.0)  # let the tail (Events) settle: RSS at rest
        settled, peak = operator.rss_mb()
        return OperatorResult(
            mode,
            done - started,
            create_seconds,
            operator.startup_seconds,
            peak,
            settled,
            operator_cpu,
            here_cpu,
            requests,
        )
    finally:
        operator.stop()


def snapshot(server: Server) -> dict[str, tuple[str, Any]]:
    """kind/name -> (resourceVersion, status without nextRunTime) of everything a write of
    the operator can touch."""
    found: dict[str, tuple[str, Any]] = {}
    core = kubernetes.client.CoreV1Api(server.api)
    lists = {
        "testplan": list_items(server, "testplans"),
        "cronjob": list_items(server, "cronjobs"),
        "job": json.loads(server.batch.list_namespaced_job(server.namespace, _preload_content=False).data)[
            "items"
        ],
        "event": json.loads(core.list_namespaced_event(server.namespace, _preload_content=False).data)[
            "items"
        ],
    }
    for kind, items in lists.items():
        for item in items:
            rest = {k: v for k, v in (item.get("status") or {}).items() if k != "nextRunTime"}
            found[f"{kind}/{item['metadata']['name']}"] = (item["metadata"].get("resourceVersion", ""), rest)
    return found


def wait_quiet(operator: OperatorProcess, timeout: float) -> float:
    """perf_counter() when the operator's CPU went quiet (QUIET_SECONDS under QUIET_CPU)."""
    deadline = time.monotonic() + timeout
    last_busy, last_cpu = time.perf_counter(), operator.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cpu = operator.cpu_seconds()
        if cpu - last_cpu > QUIET_CPU * 0.25:
            last_busy = time.perf_counter()
        last_cpu = cpu
        if time.perf_counter() - last_busy >= QUIET_SECONDS:
            return last_busy
    raise RuntimeError(f"the operator never went quiet within {timeout} s:\n{operator.log_tail()}")


def run_restart(
    server: Server,
    count: int,
    workdir: pathlib.Path,
    poll: float,
    timeout: float,
    command: Sequence[str] = OPERATOR_COMMAND,
) -> RestartResult:
    """N plans reconciled by a first operator, which stops; a second one starts on the same,
    unchanged plans: what it writes (target: nothing) and how long until it is steady."""
    first = OperatorProcess(server.kubeconfig, server.namespace, workdir / "operator-first.log", command)
    server.probe()
    try:
        first.start()
        create_plans(server, count)
        wait_until_done(server, count, poll, timeout, first)
        wait_quiet(first, timeout)
    finally:
        first.stop()
    before = snapshot(server)
    requests_before = requests_now(server, None)
    second = OperatorProcess(server.kubeconfig, server.namespace, workdir / "operator-restart.log", command)
    try:
        second.start()
        steady = wait_quiet(second, timeout)
        _, peak = second.rss_mb()
        requests = since(requests_now(server, second), requests_before)
    finally:
        second.stop()
    after = snapshot(server)
    changed = sorted(key for key, (rv, _) in after.items() if before.get(key, ("", None))[0] != rv)
    # A plan whose next run time came while the operator was down gets its new nextRunTime:
    # a change of the truth, counted apart from the writes that change nothing.
    moved = [key for key in changed if key in before and before[key][1] == after[key][1]]
    others = [key for key in changed if key not in moved]
    return RestartResult(len(others), others[:5], len(moved), requests, steady - second.spawned_at, peak)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def verbs_text(requests: dict[str, int], count: int, cluster: bool) -> str:
    text = ", ".join(f"{verb} {n / count:.2f}" for verb, n in requests.items()) or "none"
    return text + (" (the operator's own count: kopf's watches and their listings aside)" if cluster else "")


def measure(args: argparse.Namespace, count: int, workdir: pathlib.Path, modes: list[str]) -> bool:
    def server(label: str) -> contextlib.AbstractContextManager[Server]:
        if args.kubeconfig:
            return cluster_server(args.kubeconfig, label)
        return emulator_server(workdir, label)

    command = shlex.split(args.operator_command)
    load = os.getloadavg()[0]
    print(f"\n== {count} TestPlans (load average {load:.1f} on {os.cpu_count()} CPUs)")
    with server("plain") as s:
        plain_seconds = run_plain(s, count)
    plain_rate = count / plain_seconds
    print(f"plain client : {count} CronJobs created in {plain_seconds:6.2f} s = {plain_rate:7.1f} CronJobs/s")
    ok = True
    for mode in modes:
        with server(mode) as s:
            result = run_operator(s, count, mode, workdir, args.poll, args.timeout, command)
        if mode == "live":
            detail = f"(client created the plans in {result.create_seconds:.2f} s)"
        else:
            detail = (
                f"(from ready; {count / (result.seconds + result.startup_seconds):.1f} plans/s "
                f"incl. the {result.startup_seconds:.2f} s process start)"
            )
        ratio = result.rate(count) / plain_rate
        rss_ok = result.peak_rss_mb <= TARGET_RSS_MB
        ok &= ratio >= TARGET_RATIO and rss_ok
        print(f"operator {mode:4s}: {count} plans Scheduled in {result.seconds:6.2f} s = "
              f"{result.rate(count):7.1f} plans/s {detail}")  # fmt: skip
        print(
            f"  operator/plain   = {ratio:5.2f}  (target >= {TARGET_RATIO})  {verdict(ratio >= TARGET_RATIO)}"
        )
        print(f"  peak RSS         = {result.peak_rss_mb:6.1f} MB (target <= {TARGET_RSS_MB:.0f} MB)  "
              f"{verdict(rss_ok)}; {result.settled_rss_mb:.1f} MB at rest")  # fmt: skip
        print(f"  operator CPU     = {1000 * result.operator_cpu / count:.1f} ms/plan "
              f"({result.operator_cpu:.2f} s; this process: {result.server_cpu:.2f} s)")  # fmt: skip
        print(f"  requests/plan    = {verbs_text(result.requests, count, bool(args.kubeconfig))}")
    if args.restart:
        with server("restart") as s:
            restart = run_restart(s, count, workdir, args.poll, args.timeout, command)
        writes_ok = restart.writes <= TARGET_RESTART_WRITES
        steady_ok = restart.steady_seconds <= TARGET_STEADY_SECONDS
        ok &= writes_ok and steady_ok
        print(f"restart with {count} unchanged plans:")
        print(f"  writes           = {restart.writes} (target {TARGET_RESTART_WRITES})  {verdict(writes_ok)}"
              + (f"; e.g. {', '.join(restart.changed)}" if restart.changed else ""))  # fmt: skip
        print(
            f"  + nextRunTime    = {restart.next_run_moved} plans whose run time passed meanwhile (a change)"
        )
        target = f"(target <= {TARGET_STEADY_SECONDS:.0f} s)"
        print(f"  steady after     = {restart.steady_seconds:.1f} s {target}  "
              f"{verdict(steady_ok)}; peak RSS {restart.peak_rss_mb:.1f} MB")  # fmt: skip
        print(f"  requests         = {verbs_text(restart.requests, 1, bool(args.kubeconfig))}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--plans", type=int, nargs="+", default=[1000], help="numbers of TestPlans, each measured (1000)"
    )
    parser.add_argument("--mode", choices=["both", "live", "cold"], default="cold")
    parser.add_argument("--no-restart", dest="restart", action="store_false", help="skip the restart phase")
    parser.add_argument("--kubeconfig", type=pathlib.Path, help="a real cluster instead of the emulator")
    parser.add_argument(
        "--poll", type=float, default=0.5, help="seconds between completion checks (default 0.5)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the operator")
    parser.add_argument(
        "--operator-command",
        default=shlex.join(OPERATOR_COMMAND),
        help="how to start the operator, before its flags (default: %(default)s; e.g. 'tep operator')",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the operator logs and print where")
    args = parser.parse_args(argv)
    if args.kubeconfig and not args.kubeconfig.is_file():
        parser.error(f"--kubeconfig: no such file: {args.kubeconfig}")
    modes = ["live", "cold"] if args.mode == "both" else [args.mode]

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tep-bench-"))
    installed_crd = False
    if args.kubeconfig:
        installed_crd = ensure_crd(args.kubeconfig)
    where = f"cluster of {args.kubeconfig}" if args.kubeconfig else "emulator (tests/emulator.py, in-process)"
    print(f"tep-operator reconcile benchmark: API: {where}, {os.cpu_count()} CPUs")
    try:
        ok = True
        for count in args.plans:
            ok &= measure(args, count, workdir, modes)
        return 0 if ok else 1
    finally:
        if installed_crd and args.kubeconfig:
            remove_crd(args.kubeconfig)
        if args.keep_logs:
            print(f"operator logs: {workdir}")
        else:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    sys.exit(main())
