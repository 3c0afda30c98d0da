"""The one place that talks to the Kubernetes API, for the operator and the CLI.

Plain JSON over HTTP (urllib3), not the official `kubernetes` package: the operator reads and
writes the raw camelCase dicts the API serves, which its pure core works on, so the package's
models (imported with its ApiClient: about 24 MB of RSS) and its per-call argument checks
(pydantic: a fifth of the operator's CPU per plan) bought nothing. Calls are synchronous; the
handlers make them in their threads (tep_operator.handlers), which share one pool of connections.
Where the API is and who we are: tep_operator.connection.
"""

import base64
import datetime
import json
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import urllib3

from tep_operator import names
from tep_operator.connection import Connection, KubeconfigError

FIELD_MANAGER = "tep-operator"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
MANAGED = f"{names.LABEL_MANAGED_BY}={names.MANAGER}"
PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"  # kopf's peering resources
# Objects per LIST response (limit/continue): a list of 10,000 objects is never one body.
LIST_PAGE_SIZE = 500
# Kept-alive connections: the handler threads, the resync, the notifier, the CLI's one.
POOL_SIZE = 32
TIMEOUT = urllib3.Timeout(connect=10, read=60)

PLANS = f"/apis/{names.GROUP}/{names.VERSION}"
BATCH = "/apis/batch/v1"
CORE = "/api/v1"

__all__ = ["ApiException", "Kube"]


class ApiException(Exception):
    """The API server answered with an error: `status` (HTTP), `reason`, `body` (its Status JSON)."""

    def __init__(self, status: int, reason: str, body: str) -> None:
        super().__init__(f"({status}) {reason}: {_message(body) or body[:200]}")
        self.status = status
        self.reason = reason
        self.body = body


def _message(body: str) -> str | None:
    try:
        message = json.loads(body or "{}").get("message")
    except (TypeError, ValueError, AttributeError):
        return None
    return str(message) if message else None


def describe_error(exc: BaseException) -> str | None:
    """One line for a user about a failed API call or a missing kubeconfig; None if neither."""
    if isinstance(exc, KubeconfigError):
        return f"no cluster configured: {exc}"
    if not isinstance(exc, ApiException):
        return None
    return f"the API server answered {exc.status}: {_message(exc.body) or exc.reason}"


def is_transient(exc: BaseException) -> bool:
    """An API that did not answer this time: throttled (429), failing (5xx) or unreachable."""
    if isinstance(exc, ApiException):
        return exc.status == 429 or exc.status >= 500
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def is_status(exc: ApiException, *codes: int) -> bool:
    return isinstance(exc, ApiException) and exc.status in codes


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _in(namespace: str | None) -> str:
    """The path part of a namespaced resource, or nothing: every namespace."""
    return f"/namespaces/{_q(namespace)}" if namespace else ""


# The API server's verb of each method (its audit log's and RBAC's); a GET of a collection is "list".
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class Kube:
    """Typed access to the few objects tep-operator reads and writes."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        # Told of every answer, by verb and status code (the operator counts them in a metric).
        self.answered: Callable[[str, int], None] = lambda verb, code: None
        context = ssl.create_default_context(cafile=connection.ca_file, cadata=connection.ca_data)
        if connection.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        cert_file, key_file = connection.client_certificate()
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
        # urllib3's default retries: a connection that failed (or was found closed) before a
        # request went out is retried; a request that went out is not, unless idempotent
        self.http = urllib3.PoolManager(maxsize=POOL_SIZE, ssl_context=context, timeout=TIMEOUT)

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: Mapping[str, str | int | None] | None = None,
        verb: str | None = None,
    ) -> dict[str, Any]:
        """One request; the JSON answer. An error status raises ApiException. `verb`: the API
        server's, when the method does not tell it (a list)."""
        headers = {"Accept": "application/json", "User-Agent": names.MANAGER}
        token = self.connection.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif self.connection.username:
            credentials = f"{self.connection.username}:{self.connection.password or ''}"
            headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body, separators=(",", ":")).encode()
        params = {key: value for key, value in (query or {}).items() if value is not None}
        url = self.connection.server + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        response = self.http.request(method, url, body=data, headers=headers)
        self.answered(verb or VERBS[method], response.status)
        if response.status >= 400:
            raise ApiException(response.status, response.reason or "", response.data.decode(errors="replace"))
        return json.loads(response.data) if response.data else {}

    def _paged(self, path: str, label_selector: str | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a LIST, fetched LIST_PAGE_SIZE at a time (limit/continue), page after
        page as the caller goes on: only one page is in memory (10,000 CronJobs take 150 MB)."""
        token = None
        while True:
            query = {"labelSelector": label_selector, "limit": LIST_PAGE_SIZE, "continue": token}
            page = self._call("GET", path, query=query, verb="list")
            token = (page.get("metadata") or {}).get("continue")
            yield from page.pop("items", None) or []
            if not token:
                return

    # TestPlans

    def get_plan(self, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", f"{PLANS}/namespaces/{_q(namespace)}/{names.PLURAL}/{_q(name)}")

    def find_plan(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The plan, or None if it does not exist (any more)."""
        try:
            return self.get_plan(namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_plans(self, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        return self._paged(f"{PLANS}{_in(namespace)}/{names.PLURAL}")

    def patch_plan_status(
        self, namespace: str, name: str, status: Mapping[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        """Merge-patch the status; with `resource_version`, only if nobody wrote in between (409 else)."""
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        path = f"{PLANS}/namespaces/{_q(namespace)}/{names.PLURAL}/{_q(name)}/status"
        return self._call("PATCH", path, body, MERGE_PATCH)

    def annotate_plan(self, namespace: str, name: str, annotations: Mapping[str, str]) -> dict[str, Any]:
        body = {"metadata": {"annotations": dict(annotations)}}
        path = f"{PLANS}/namespaces/{_q(namespace)}/{names.PLURAL}/{_q(name)}"
        return self._call("PATCH", path, body, MERGE_PATCH)

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
            "apiVersion": "v1",
            "kind": "Event",
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
        self._call("POST", f"{CORE}/namespaces/{_q(metadata['namespace'])}/events", event)

    def peering_status(self, name: str, namespace: str | None) -> dict[str, Any]:
        """The keep-alives in kopf's KopfPeering (namespace) or ClusterKopfPeering object."""
        plural = "kopfpeerings" if namespace else "clusterkopfpeerings"
        path = f"/apis/{PEERING_GROUP}/{PEERING_VERSION}{_in(namespace)}/{plural}/{_q(name)}"
        return dict(self._call("GET", path).get("status") or {})

    # CronJobs and Jobs

    def apply_cronjob(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply: owns exactly the fields we render, leaves other managers' fields
        alone, and takes ours back (force) when somebody edited them by hand."""
        metadata = manifest["metadata"]
        path = f"{BATCH}/namespaces/{_q(metadata['namespace'])}/cronjobs/{_q(metadata['name'])}"
        # JSON is YAML: the apply body is sent as JSON
        return self._call(
            "PATCH", path, manifest, APPLY_PATCH, {"fieldManager": FIELD_MANAGER, "force": "true"}
        )

    def create_job(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        path = f"{BATCH}/namespaces/{_q(manifest['metadata']['namespace'])}/jobs"
        return self._call("POST", path, manifest, query={"fieldManager": FIELD_MANAGER})

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self._call(
                "DELETE",
                f"{BATCH}/namespaces/{_q(namespace)}/jobs/{_q(name)}",
                query={"propagationPolicy": "Background"},
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def list_managed_jobs(self, namespace: str | None) -> Iterator[dict[str, Any]]:
        """Our Jobs, in `namespace` or (None) in every namespace."""
        return self._paged(f"{BATCH}{_in(namespace)}/jobs", MANAGED)

    def list_managed_cronjobs(self, namespace: str | None) -> Iterator[dict[str, Any]]:
        """Our CronJobs, in `namespace` or (None) in every namespace."""
        return self._paged(f"{BATCH}{_in(namespace)}/cronjobs", MANAGED)

    def list_job_pods(self, job: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The pods the Job controls: labelled with its uid and owned by it (as the Job
        controller itself claims them), on every Kubernetes version."""
        uid = job["metadata"]["uid"]
        path = f"{CORE}/namespaces/{_q(job['metadata']['namespace'])}/pods"
        query = {"labelSelector": f"{names.LABEL_CONTROLLER_UID}={uid}"}
        items = self._call("GET", path, query=query, verb="list").get("items") or []
        return [pod for pod in items if controller_uid(pod) == uid]

    # Secrets (notifications, docs/notifications.md)

    def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret, decoded; None if the key is absent. A `get`, never a list or
        watch: the operator's RBAC grants only that, only where plans live."""
        secret = self._call("GET", f"{CORE}/namespaces/{_q(namespace)}/secrets/{_q(name)}")
        value = (secret.get("data") or {}).get(key)
        return base64.b64decode(value).decode() if value is not None else None


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller (its ownerReference with `controller: true`)."""
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((owner.get("uid") for owner in owners if owner.get("controller")), None)
