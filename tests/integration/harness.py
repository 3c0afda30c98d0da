"""The real operator against the emulator, and the parts of Kubernetes the emulator lacks.

`OperatorThread` runs `tep_operator.runtime.run` (the production entry point: kopf,
standalone, with our registry, settings and login) in its own thread with its own event
loop, talking HTTP to the emulator through a kubeconfig, exactly as `tep operator` does.

The emulator has no CronJob controller, Job controller or kubelet; `Cluster` plays them:
it creates a Job from the CronJob's template, a Pod for it, and finishes them the way
Kubernetes does (container termination message, Job conditions).
"""

import copy
import dataclasses
import functools
import json
import logging
import pathlib
import threading
import time
from typing import Any

import kubernetes

from tep_operator import names, runtime
from tep_operator.client import Kube
from tep_operator.config import OperatorConfig
from tep_operator.connection import load as load_connection
from tests.chart.chart_tools import INSTALL_HINT, find_helm, render
from tests.emulator import Emulator, Grant, job_pod, rbac_grants, wait_for
from tests.operator_log import KOPF_SHUTDOWN_RETRY

GROUP, VERSION, PLURAL = names.GROUP, names.VERSION, names.PLURAL
TEST_CONFIG = OperatorConfig(
    runner_image="tep-runner:test",
    reports_claim="tep-reports",
    runner_resources={"limits": {"cpu": "2", "memory": "1Gi"}},
    liveness_port=0,
    metrics_port=0,
    resync_seconds=3600,
)


# The bearer token of the operator's kubeconfig: the emulator authorizes it as the chart's RBAC would.
OPERATOR_TOKEN = "tep-operator-service-account"


@functools.cache
def chart_rbac(namespaces: tuple[str, ...] = (), replicas: int = 1) -> frozenset[Grant]:
    """What the chart's RBAC grants the operator (notifications on), for `namespaces` (empty: all)."""
    helm = find_helm()
    if helm is None:
        raise AssertionError(INSTALL_HINT)
    values = ["--set", "notifications.enabled=true", "--set", f"replicas={replicas}"]
    if namespaces:
        values += ["--set", "watchNamespaces={" + ",".join(namespaces) + "}"]
    return rbac_grants(render(helm, *values))


def operator_kubeconfig(
    emulator: Emulator, path: pathlib.Path, namespaces: tuple[str, ...] = (), replicas: int = 1
) -> pathlib.Path:
    """The operator's kubeconfig: its own token, which may do only what the chart's RBAC grants it
    for these namespaces and replicas (anything else is a 403, as on a cluster the chart installed)."""
    emulator.authorize(OPERATOR_TOKEN, chart_rbac(namespaces, replicas))
    return emulator.kubeconfig(path, token=OPERATOR_TOKEN)


# Loggers of the operator's code: ours and kopf's (its handlers, watches and activities).
OPERATOR_LOGGERS = ("tep_operator", "kopf")
THREAD_NAME = "tep-operator"


class ErrorRecords(logging.Handler):
    """The operator's log records at ERROR or above, or with a traceback: each one a defect
    that a test must not pass over (an AttributeError logged and ignored every resync period
    was one)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[logging.LogRecord] = []
        self.stopping_since: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        ours = record.name.split(".")[0] in OPERATOR_LOGGERS or (
            record.name == "asyncio" and record.threadName == THREAD_NAME  # the operator's loop
        )
        if not ours or not (record.levelno >= logging.ERROR or record.exc_info):
            return
        if (
            self.stopping_since is not None
            and record.created >= self.stopping_since
            and (KOPF_SHUTDOWN_RETRY.match(record.getMessage()))
        ):
            return  # kopf closed its own HTTP session under a request in flight while stopping
        self.found.append(record)

    def report(self) -> str:
        formatter = logging.Formatter("%(levelname)s %(name)s [%(threadName)s] %(message)s")
        return "\n".join(formatter.format(record) for record in self.found)


class OperatorThread:
    """`tep operator` in a thread; `with` starts it and stops it. Stopping fails if the
    operator logged an error or a traceback meanwhile (unless `allow_errors`)."""

    def __init__(
        self, emulator: Emulator, workdir: pathlib.Path, *, allow_errors: bool = False, **config: Any
    ) -> None:
        self.config = dataclasses.replace(TEST_CONFIG, **config)
        kubeconfig = operator_kubeconfig(
            emulator, workdir / "kubeconfig", self.config.namespaces, 2 if self.config.peering else 1
        )
        self.kube = Kube(load_connection(str(kubeconfig)))
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name=THREAD_NAME, daemon=True)
        self.errors = ErrorRecords()
        self.allow_errors = allow_errors

    def _main(self) -> None:
        try:
            runtime.run(self.config, self.kube, stop_flag=self.stop_flag, ready_flag=self.ready_flag)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def start(self) -> "OperatorThread":
        logging.getLogger().addHandler(self.errors)
        self.thread.start()
        assert self.ready_flag.wait(15), f"the operator did not start: {self.error!r}"
        return self

    def stop(self) -> None:
        self.errors.stopping_since = time.time()
        self.stop_flag.set()
        self.thread.join(20)
        logging.getLogger().removeHandler(self.errors)
        assert not self.thread.is_alive(), "the operator did not stop within 20 s"
        assert self.error is None, f"the operator crashed: {self.error!r}"
        assert self.allow_errors or not self.errors.found, (
            f"the operator logged errors or tracebacks:\n{self.errors.report()}"
        )

    def __enter__(self) -> "OperatorThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_plan(name: str = "smoke", namespace: str = "qa", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TestPlan",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"crontab": "*/30 * * * *", "source": {"configMap": {"name": f"{name}-tests"}}},
    }
    body["spec"].update(spec)
    return body


class Cluster:
    """Typed access for the tests, and the controllers the emulator does not have."""

    def __init__(self, emulator: Emulator) -> None:
        self.kubernetes_minor = emulator.kubernetes_minor
        api = emulator.api_client()
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.batch = kubernetes.client.BatchV1Api(api)
        self.core = kubernetes.client.CoreV1Api(api)

    # TestPlans

    def create_plan(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = body["metadata"]["namespace"]
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)

    def plan(self, name: str = "smoke", namespace: str = "qa") -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def status(self, name: str = "smoke", namespace: str = "qa") -> dict[str, Any]:
        return self.plan(name, namespace).get("status") or {}

    def patch_plan(self, patch: dict[str, Any], name: str = "smoke", namespace: str = "qa") -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, patch, _content_type="application/merge-patch+json"
        )

    def request_run(self, value: str, name: str = "smoke", namespace: str = "qa") -> None:
        self.patch_plan({"metadata": {"annotations": {"tep.dev/run-requested-at": value}}}, name, namespace)

    def wait_status(
        self, check: Any, name: str = "smoke", namespace: str = "qa", timeout: float = 10, message: str = ""
    ) -> dict[str, Any]:
        return wait_for(
            lambda: (lambda s: s if check(s) else None)(self.status(name, namespace)),
            timeout=timeout,
            message=message,
        )

    # CronJobs, Jobs, Pods, Events

    def cronjob(self, name: str = "smoke", namespace: str = "qa") -> dict[str, Any]:
        return self.batch.api_client.sanitize_for_serialization(
            self.batch.read_namespaced_cron_job(name, namespace)
        )

    def cronjobs(self, namespace: str = "qa") -> list[dict[str, Any]]:
        return [
            self.batch.api_client.sanitize_for_serialization(c)
            for c in self.batch.list_namespaced_cron_job(namespace).items
        ]

    def jobs(self, namespace: str = "qa", **selector: str) -> list[dict[str, Any]]:
        label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
        items = self.batch.list_namespaced_job(namespace, label_selector=label_selector or None).items
        return [self.batch.api_client.sanitize_for_serialization(j) for j in items]

    def events(self, namespace: str = "qa", reason: str | None = None) -> list[Any]:
        events = self.core.list_namespaced_event(namespace).items
        return [e for e in events if reason is None or e.reason == reason]

    # The CronJob controller, Job controller and kubelet

    def start_job(
        self, name: str, cronjob: str = "smoke", namespace: str = "qa", start: str = "2026-11-21T19:42:00Z"
    ) -> dict[str, Any]:
        """What the CronJob controller does at a scheduled time: a Job from the jobTemplate,
        owned by the CronJob."""
        live = self.cronjob(cronjob, namespace)
        template = copy.deepcopy(live["spec"]["jobTemplate"])
        owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob, "uid": live["metadata"]["uid"],
                 "controller": True, "blockOwnerDeletion": True}  # fmt: skip
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                **template["metadata"],
                "name": name,
                "namespace": namespace,
                "ownerReferences": [owner],
            },
            "spec": template["spec"],
        }
        self.batch.create_namespaced_job(namespace, job)
        self.batch.patch_namespaced_job_status(name, namespace, {"status": {"active": 1, "startTime": start}})
        return job

    def job(self, name: str, namespace: str = "qa") -> dict[str, Any]:
        """The Job as the API server serves it (raw JSON, with the defaults it added)."""
        response = self.batch.read_namespaced_job(name, namespace, _preload_content=False)
        return dict(json.loads(response.data))

    def create_pod(self, job: str, namespace: str = "qa", index: int = 0) -> str:
        """The Job controller: a pod of `job`, with the labels and owner it gives its pods."""
        pod = job_pod(self.job(job, namespace), index, minor=self.kubernetes_minor)
        response = self.core.create_namespaced_pod(namespace, pod, _preload_content=False)
        return str(json.loads(response.data)["metadata"]["name"])

    def finish_pod(
        self,
        job: str,
        namespace: str = "qa",
        *,
        message: str | None = None,
        exit_code: int = 0,
        reason: str = "Completed",
        index: int = 0,
        pod_reason: str | None = None,
    ) -> str:
        """The Job controller and the kubelet: a runner pod of `job` that ended with this
        termination message; its name.

        `pod_reason` "DeadlineExceeded": the kubelet stopped the pod at its activeDeadlineSeconds (SIGTERM,
        then the grace period); it records that in the pod's status.reason and message, once the container
        has terminated.
        """
        pod_name = self.create_pod(job, namespace, index)
        terminated: dict[str, Any] = {"exitCode": exit_code, "reason": reason}
        if message is not None:
            terminated["message"] = message
        kubelet: dict[str, Any] = {}
        if pod_reason == "DeadlineExceeded":  # the kubelet's own words (pkg/kubelet/active_deadline.go)
            kubelet = {
                "reason": pod_reason,
                "message": "Pod was active on the node longer than the specified deadline",
            }
        self.core.patch_namespaced_pod_status(
            pod_name,
            namespace,
            {
                "status": {
                    **kubelet,
                    "phase": "Succeeded" if exit_code == 0 and not kubelet else "Failed",
                    "containerStatuses": [
                        {
                            "name": "runner",
                            "state": {"terminated": terminated},
                            "ready": False,
                            "restartCount": 0,
                            "image": "tep-runner:test",
                            "imageID": "",
                        }
                    ],
                }
            },
        )
        return pod_name

    def pod_cannot_start(self, pod_name: str, reason: str, message: str, namespace: str = "qa") -> None:
        """The kubelet: the runner container of `pod_name` waits (e.g. its image cannot be pulled)."""
        waiting = {"reason": reason, "message": message}
        status = {"phase": "Pending", "containerStatuses": [
            {"name": "runner", "state": {"waiting": waiting}, "ready": False, "restartCount": 0,
             "image": "tep-runner:test", "imageID": ""}]}  # fmt: skip
        self.core.patch_namespaced_pod_status(pod_name, namespace, {"status": status})

    def finish_job(
        self,
        name: str,
        namespace: str = "qa",
        *,
        failed_reason: str | None = None,
        end: str = "2026-11-21T19:42:41Z",
    ) -> None:
        """The Job controller: Complete, or Failed with a reason."""
        if failed_reason:
            conditions = [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": failed_reason,
                    "message": failed_reason,
                    "lastTransitionTime": end,
                }
            ]
            status = {"active": 0, "failed": 1, "conditions": conditions}
        else:
            conditions = [{"type": "Complete", "status": "True", "lastTransitionTime": end}]
            status = {"active": 0, "succeeded": 1, "conditions": conditions, "completionTime": end}
        self.batch.patch_namespaced_job_status(name, namespace, {"status": status})

    def run(
        self,
        name: str,
        *,
        message: str | None = None,
        exit_code: int = 0,
        reason: str = "Completed",
        failed_reason: str | None = None,
        start: str = "2026-11-21T19:42:00Z",
        end: str = "2026-11-21T19:42:41Z",
    ) -> None:
        """A whole scheduled run: Job started, pod ended, Job finished."""
        self.start_job(name, start=start)
        self.finish_pod(name, message=message, exit_code=exit_code, reason=reason)
        self.finish_job(name, failed_reason=failed_reason, end=end)
