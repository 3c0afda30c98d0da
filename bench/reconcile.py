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

Completion is found by LISTing the namespace's CronJobs and TestPlans (two requests per
poll, every --poll seconds), never N GETs.
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
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # the repository's root

import kubernetes
import yaml

from tep_operator import names
from tep_operator.client import load_configuration
from tep_operator.config import OperatorConfig, config_from_env
from tep_operator.cronjob import render_cronjob
from tep_operator.plan import read_plan
from tests.emulator import Emulator, start_emulator

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRD_FILE = ROOT / "crds" / "testplans.tep.dev.yaml"
CRD_NAME = "testplans.tep.dev"

OPERATOR_COMMAND = (sys.executable, "-m", "tep_operator")

TARGET_RATIO = 0.5  # operator plans/s over plain-client CronJobs/s
TARGET_RSS_MB = 150.0  # operator peak RSS at 500 plans


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
        yield Server(emulator.api_client(), kubeconfig, namespace, emulator.stop)
        errors = emulator.server_errors
        if errors:
            print(f"  warning: the emulator had server-side errors: {errors[:3]!r}", file=sys.stderr)
    finally:
        emulator.stop()


@contextlib.contextmanager
def cluster_server(kubeconfig: pathlib.Path, label: str) -> Iterator[Server]:
    api = kubernetes.client.ApiClient(load_configuration(str(kubeconfig)))
    core = kubernetes.client.CoreV1Api(api)
    namespace = f"tep-bench-{label}-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        yield Server(api, kubeconfig, namespace, lambda: None)
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")


def ensure_crd(kubeconfig: pathlib.Path) -> bool:
    """Install the TestPlan CRD if missing; True if this call installed it."""
    api = kubernetes.client.ApiClient(load_configuration(str(kubeconfig)))
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
    api = kubernetes.client.ApiClient(load_configuration(str(kubeconfig)))
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

    The liveness endpoint is on a free port (instead of 0: off) only so that readiness can be
    seen from outside, as a kubelet would; metrics are off. Logs go to `log_path`.
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
            "--metrics-port", "0",
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


def plan_body(index: int, namespace: str) -> dict[str, Any]:
    name = f"plan-{index:05d}"
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
    if kind == "cronjobs":
        response = server.batch.list_namespaced_cron_job(server.namespace, _preload_content=False)
    else:
        response = server.custom.list_namespaced_custom_object(
            names.GROUP, names.VERSION, server.namespace, names.PLURAL, _preload_content=False
        )
    return list(json.loads(response.data).get("items") or [])


def progress(server: Server, count: int) -> tuple[int, int]:
    """(plans with their CronJob, plans with phase Scheduled) among plan-00000 .. plan-<count-1>."""
    wanted = {f"plan-{i:05d}" for i in range(count)}
    cronjobs = {c["metadata"]["name"] for c in list_items(server, "cronjobs")}
    scheduled = {
        p["metadata"]["name"]
        for p in list_items(server, "testplans")
        if (p.get("status") or {}).get("phase") == "Scheduled"
    }
    with_cronjob = {n for n in wanted if names.cronjob_name(n) in cronjobs}
    return len(with_cronjob), len(wanted & scheduled)


def wait_until_done(
    server: Server, count: int, poll: float, timeout: float, operator: OperatorProcess
) -> float:
    """Poll until every plan has its CronJob and phase Scheduled; the perf_counter() then."""
    deadline = time.monotonic() + timeout
    done = (0, 0)
    while time.monotonic() < deadline:
        done = progress(server, count)
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
    server_cpu: float  # CPU seconds of this process (emulator, client, polling) until done

    def rate(self, count: int) -> float:
        return count / self.seconds


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
    try:
        if mode == "live":
            operator.start()
            cpu_before = operator.cpu_seconds()
            here_before = time.process_time()
            started = time.perf_counter()
            create_plans(server, count)
            create_seconds = time.perf_counter() - started
        else:
            before = time.perf_counter()
            create_plans(server, count)
            create_seconds = time.perf_counter() - before
            here_before = time.process_time()
            operator.start()
            cpu_before = 0.0  # start-up is part of a cold start
            started = operator.ready_at
        done = wait_until_done(server, count, poll, timeout, operator)
        operator_cpu = operator.cpu_seconds() - cpu_before
        here_cpu = time.process_time() - here_before
        time.sleep(2.0)  # let the tail (Events, kopf's annotations) settle: RSS at rest
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
        )
    finally:
        operator.stop()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plans", type=int, default=500, help="number of TestPlans (default 500)")
    parser.add_argument("--mode", choices=["both", "live", "cold"], default="both")
    parser.add_argument("--kubeconfig", type=pathlib.Path, help="a real cluster instead of the emulator")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between LIST polls (default 0.1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the operator")
    parser.add_argument(
        "--operator-command",
        default=shlex.join(OPERATOR_COMMAND),
        help="how to start the operator, before its flags (default: %(default)s; e.g. 'tep operator')",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the operator logs and print where")
    args = parser.parse_args(argv)
    count: int = args.plans
    modes = ["live", "cold"] if args.mode == "both" else [args.mode]

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tep-bench-"))
    installed_crd = False
    if args.kubeconfig:
        installed_crd = ensure_crd(args.kubeconfig)

    def server(label: str) -> contextlib.AbstractContextManager[Server]:
        if args.kubeconfig:
            return cluster_server(args.kubeconfig, label)
        return emulator_server(workdir, label)

    where = f"cluster of {args.kubeconfig}" if args.kubeconfig else "emulator (tests/emulator.py, in-process)"
    print(f"tep-operator reconcile benchmark: {count} TestPlans, API: {where}, {os.cpu_count()} CPUs")
    try:
        with server("plain") as s:
            plain_seconds = run_plain(s, count)
        plain_rate = count / plain_seconds
        print(
            f"plain client : {count} CronJobs created in {plain_seconds:6.2f} s = "
            f"{plain_rate:7.1f} CronJobs/s"
        )

        results: list[OperatorResult] = []
        for mode in modes:
            with server(mode) as s:
                command = shlex.split(args.operator_command)
                result = run_operator(s, count, mode, workdir, args.poll, args.timeout, command)
            results.append(result)
            if mode == "live":
                detail = f"(client created the plans in {result.create_seconds:.2f} s"
            else:
                detail = (
                    f"(from ready; {count / (result.seconds + result.startup_seconds):.1f} plans/s "
                    f"incl. the {result.startup_seconds:.2f} s process start"
                )
            print(
                f"operator {mode:4s}: {count} plans Scheduled in {result.seconds:6.2f} s = "
                f"{result.rate(count):7.1f} plans/s {detail}; "
                f"peak RSS {result.peak_rss_mb:.1f} MB, {result.settled_rss_mb:.1f} MB at rest)"
            )
            print(
                f"               CPU until done: operator {result.operator_cpu:.2f} s "
                f"({1000 * result.operator_cpu / count:.1f} ms/plan), "
                "this process (API server, client, polls) "
                f"{result.server_cpu:.2f} s"
            )

        print("targets:")
        ok = True
        for result in results:
            ratio = result.rate(count) / plain_rate
            ok &= ratio >= TARGET_RATIO
            print(
                f"  {result.mode:4s} operator/plain = {ratio:5.2f}   (target >= {TARGET_RATIO})"
                f"          {verdict(ratio >= TARGET_RATIO)}"
            )
        for result in results:
            rss_ok = result.peak_rss_mb <= TARGET_RSS_MB or count > 500
            ok &= rss_ok
            note = "" if count <= 500 else " (target is for 500 plans: not judged)"
            print(
                f"  {result.mode:4s} operator peak RSS = {result.peak_rss_mb:6.1f} MB (target <= "
                f"{TARGET_RSS_MB:.0f} MB at 500){note}  {verdict(rss_ok)}"
            )
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
