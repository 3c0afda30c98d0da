"""The one place that talks to the Kubernetes API, for the operator and the CLI.

Built on the official `kubernetes` client. Calls are synchronous; kopf runs the handlers
that use them in its thread pool.
"""

import base64
import datetime
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any, cast

import kubernetes
import urllib3
from kubernetes.client import ApiClient, ApiException, BatchV1Api, Configuration, CoreV1Api, CustomObjectsApi

from tep_operator import names

FIELD_MANAGER = "tep-operator"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
MANAGED = f"{names.LABEL_MANAGED_BY}={names.MANAGER}"
PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"  # kopf's peering resources
# Objects per LIST response (limit/continue): a list of 10,000 objects is never one body.
LIST_PAGE_SIZE = 500

__all__ = ["ApiException", "Kube", "load_configuration"]

# kubernetes.config has no annotations: the functions of it we call, typed once here.
_load_kube_config = cast(Callable[..., None], kubernetes.config.load_kube_config)
_load_incluster_config = cast(Callable[..., None], kubernetes.config.load_incluster_config)
_list_kube_config_contexts = cast(
    Callable[..., tuple[list[dict[str, Any]], dict[str, Any]]], kubernetes.config.list_kube_config_contexts
)


def load_configuration(kubeconfig: str | None = None, context: str | None = None) -> Configuration:
    """A client configuration: the given kubeconfig, else in-cluster, else the default kubeconfig."""
    configuration = Configuration()
    if kubeconfig:
        _load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        return configuration
    try:
        _load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        _load_kube_config(context=context, client_configuration=configuration)
    return configuration


def kubeconfig_namespace(kubeconfig: str | None) -> str | None:
    """The namespace of the kubeconfig's current context, if it names one."""
    _, context = _list_kube_config_contexts(config_file=kubeconfig)
    namespace = (context.get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


def bearer_token(configuration: Configuration) -> str | None:
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    return header.split(" ", 1)[-1] if header else None


def describe_error(exc: BaseException) -> str | None:
    """One line for a user about a failed API call or a missing kubeconfig; None if neither."""
    if isinstance(exc, kubernetes.config.ConfigException):
        return f"no cluster configured: {exc}"
    if not isinstance(exc, ApiException):
        return None
    try:
        detail = json.loads(exc.body or "{}").get("message") or exc.reason
    except (TypeError, ValueError):
        detail = exc.reason
    return f"the API server answered {exc.status}: {detail}"


def is_transient(exc: BaseException) -> bool:
    """An API that did not answer this time: throttled (429), failing (5xx) or unreachable."""
    if isinstance(exc, ApiException):
        return exc.status == 429 or (exc.status or 0) >= 500
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def is_status(exc: ApiException, *codes: int) -> bool:
    return isinstance(exc, ApiException) and exc.status in codes


class Kube:
    """Typed access to the few objects tep-operator reads and writes."""

    def __init__(self, configuration: Configuration) -> None:
        self.configuration = configuration
        self.api = ApiClient(configuration)
        self.batch = BatchV1Api(self.api)
        self.core = CoreV1Api(self.api)
        self.custom = CustomObjectsApi(self.api)

    # TestPlans

    # The client's custom-object calls are typed as returning `object`: they return the
    # JSON body as a dict.

    def get_plan(self, namespace: str, name: str) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            self.custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.PLURAL, name
            ),
        )

    def find_plan(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The plan, or None if it does not exist (any more)."""
        try:
            return self.get_plan(namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_plans(self, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace:
            return _paged(
                self.custom.list_namespaced_custom_object, names.GROUP, names.VERSION, namespace, names.PLURAL
            )
        return _paged(self.custom.list_cluster_custom_object, names.GROUP, names.VERSION, names.PLURAL)

    def patch_plan_status(
        self, namespace: str, name: str, status: Mapping[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        """Merge-patch the status; with `resource_version`, only if nobody wrote in between (409 else)."""
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return cast(
            dict[str, Any],
            self.custom.patch_namespaced_custom_object_status(
                names.GROUP, names.VERSION, namespace, names.PLURAL, name, body, _content_type=MERGE_PATCH
            ),
        )

    def annotate_plan(self, namespace: str, name: str, annotations: Mapping[str, str]) -> dict[str, Any]:
        body = {"metadata": {"annotations": dict(annotations)}}
        return cast(
            dict[str, Any],
            self.custom.patch_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.PLURAL, name, body, _content_type=MERGE_PATCH
            ),
        )

    def post_event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on `obj` (a TestPlan), sent now: nothing waits in a queue that a
        shutdown could drop, and it works from any thread."""
        metadata = obj["metadata"]
        moment = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        involved = {"apiVersion": names.API_VERSION, "kind": names.KIND, "name": metadata["name"],
                    "namespace": metadata["namespace"]}  # fmt: skip
        if metadata.get("uid"):
            involved["uid"] = metadata["uid"]
        event = {
            "metadata": {"generateName": f"{metadata['name'][:200]}.", "namespace": metadata["namespace"]},
            "involvedObject": involved,
            "type": type_,
            "reason": reason,
            "message": message[:1024],  # the API server's limit for Event messages
            "firstTimestamp": moment,
            "lastTimestamp": moment,
            "count": 1,
            "source": {"component": names.MANAGER},
            "reportingComponent": names.MANAGER,
            "reportingInstance": socket.gethostname(),
        }
        # A dict body is sent as it is; the client's annotation names only its model class.
        self.core.create_namespaced_event(metadata["namespace"], cast(Any, event), _preload_content=False)

    def peering_status(self, name: str, namespace: str | None) -> dict[str, Any]:
        """The keep-alives in kopf's KopfPeering (namespace) or ClusterKopfPeering object."""
        if namespace:
            body = self.custom.get_namespaced_custom_object(
                PEERING_GROUP, PEERING_VERSION, namespace, "kopfpeerings", name
            )
        else:
            body = self.custom.get_cluster_custom_object(
                PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", name
            )
        return dict(cast(dict[str, Any], body).get("status") or {})

    # CronJobs and Jobs

    def apply_cronjob(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply: owns exactly the fields we render, leaves other managers' fields
        alone, and takes ours back (force) when somebody edited them by hand."""
        metadata = manifest["metadata"]
        result = self.batch.patch_namespaced_cron_job(
            metadata["name"],
            metadata["namespace"],
            dict(manifest),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY_PATCH,
            _preload_content=False,
        )
        return _json(result)

    def create_job(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return _json(
            self.batch.create_namespaced_job(
                manifest["metadata"]["namespace"],
                cast(Any, dict(manifest)),  # a dict body is sent as it is (see post_event)
                field_manager=FIELD_MANAGER,
                _preload_content=False,
            )
        )

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise

    def list_managed_jobs(self, namespace: str | None) -> list[dict[str, Any]]:
        """Our Jobs, in `namespace` or (None) in every namespace."""
        if namespace:
            return _paged(self.batch.list_namespaced_job, namespace, label_selector=MANAGED)
        return _paged(self.batch.list_job_for_all_namespaces, label_selector=MANAGED)

    def list_managed_cronjobs(self, namespace: str | None) -> list[dict[str, Any]]:
        """Our CronJobs, in `namespace` or (None) in every namespace."""
        if namespace:
            return _paged(self.batch.list_namespaced_cron_job, namespace, label_selector=MANAGED)
        return _paged(self.batch.list_cron_job_for_all_namespaces, label_selector=MANAGED)

    def list_job_pods(self, job: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The pods the Job controls: labelled with its uid and owned by it (as the Job
        controller itself claims them), on every Kubernetes version."""
        uid = job["metadata"]["uid"]
        selector = f"{names.LABEL_CONTROLLER_UID}={uid}"
        response = self.core.list_namespaced_pod(
            job["metadata"]["namespace"], label_selector=selector, _preload_content=False
        )
        return [pod for pod in _items(response) if controller_uid(pod) == uid]

    # Secrets (notifications, docs/notifications.md)

    def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret, decoded; None if the key is absent. A `get`, never a list or
        watch: the operator's RBAC grants only that, only where plans live."""
        secret = _json(self.core.read_namespaced_secret(name, namespace, _preload_content=False))
        value = (secret.get("data") or {}).get(key)
        return base64.b64decode(value).decode() if value is not None else None


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller (its ownerReference with `controller: true`)."""
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((owner.get("uid") for owner in owners if owner.get("controller")), None)


def _json(response: Any) -> dict[str, Any]:
    """The raw JSON body of a `_preload_content=False` response.

    Raw dicts, not the client's model objects: the operator's pure core works on the same
    camelCase dicts the API serves, and skipping model deserialisation is much cheaper.
    """
    return cast(dict[str, Any], json.loads(response.data))


def _items(response: Any) -> list[dict[str, Any]]:
    return list(_json(response).get("items", []))


def _paged(list_call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a LIST, fetched LIST_PAGE_SIZE at a time (limit/continue)."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = _json(
            list_call(*args, limit=LIST_PAGE_SIZE, _continue=token, _preload_content=False, **kwargs)
        )
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items
