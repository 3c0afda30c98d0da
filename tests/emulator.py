"""
The test Kubernetes API of tep-operator: kmock's ``KubernetesEmulator``, completed.

One emulator serves a real HTTP Kubernetes API on ``http://127.0.0.1:<free port>`` from a
BACKGROUND THREAD with its own asyncio event loop.  The operator under test (kopf) runs in another
thread with its own loop (see :func:`run_kopf_in_thread`), and the tests themselves are plain sync
functions that talk to the API with the official ``kubernetes`` client (:meth:`Emulator.api_client`).

Usage::

    with running_emulator() as kube:              # or: kube = start_emulator(); ...; kube.stop()
        batch = kubernetes.client.BatchV1Api(kube.api_client())
        ...
        with run_kopf_in_thread(registry, url=kube.url):
            wait_for(lambda: get_status(...), message="status never landed")

In pytest, use the ``kube`` fixture of ``tests/integration/conftest.py``.

Gaps of raw kmock 0.8 and how each one is closed here (every one has a probe in
``tests/integration/test_emulator.py`` that fails against raw kmock):

1. **Quadratic slowdown.**  kmock matches every request against its reactions by re-scanning the
   whole request log (``request in reaction._source`` walks ``Root._requests`` applying filters),
   so each request costs O(requests so far): ~24 s for 500 CronJob creates, the last 100 creates
   6x slower than the first 100.  Closed by :attr:`TepEmulator.record_requests` (default False):
   before matching, the log (and each reaction's own log) is trimmed to the requests that are
   currently in flight (the only ones that can still be matched), the request being matched first,
   where a filter walking the log meets it at once: matching is O(1) for the emulation's own
   reaction, O(concurrent requests) for a test's reaction that does not match.  The trade-off: the request
   log (``kube.handler[...]`` assertions, slicing such as ``kube.handler['get'][:1]``) sees only the
   in-flight requests.  Set ``record_requests=True`` to get kmock's full log (and its slowness).
2. **No server metadata.**  Closed in :meth:`TepEmulator._create` & ``_commit``: ``uid`` (uuid4) on
   create; ``resourceVersion`` from one global counter (a string), bumped on every write;
   ``generation`` 1 on create and +1 when anything except ``metadata``/``status`` changes;
   ``creationTimestamp``; ``metadata.namespace`` taken from the URL (a mismatching body namespace is
   a 400); ``apiVersion``/``kind`` filled in.  Deletion honours finalizers: deleting an object with
   finalizers only sets ``deletionTimestamp`` (+ ``deletionGracePeriodSeconds: 0``); the object is
   removed when its last finalizer is removed; new finalizers cannot be added to a deleting object
   (422).  A write that changes nothing is a no-op: no resourceVersion bump, no watch event (as a
   real API server).
3. **Spec/status not separated.**  For resources declared with the ``status`` subresource
   (testplans, cronjobs, jobs, pods, namespaces, PVCs, CRDs), a PATCH/PUT to ``.../status`` changes
   only ``status``; a PATCH/PUT/apply to the main resource keeps the stored ``status``, and a create
   drops ``status`` from the body (as the real API does; set it afterwards via ``/status``, e.g.
   ``BatchV1Api.patch_namespaced_job_status``, acting as the Job controller or the kubelet).
   ``/status`` of a resource without the subresource, or any other subresource, is a 404.
4. **labelSelector ignored.**  Closed for list, watch and deletecollection: ``a=b``, ``a==b``,
   ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x,y)``, comma-separated (AND).
   ``fieldSelector`` supports ``=``, ``==``, ``!=`` on any dotted path (``metadata.name``,
   ``metadata.namespace``, ``status.phase``, ``involvedObject.name``, ...).  On a selective watch an
   object that stops matching is reported as DELETED and one that starts matching as ADDED (as the
   real watch cache does).
5. **No generateName.**  Closed: ``name = generateName + 5 random [a-z0-9]`` (retried on collision);
   neither ``name`` nor ``generateName`` is a 422.
6. **Resources.**  Declared in ``handler.resources`` (kmock 0.8's ``ResourcesArray``; see
   :data:`RESOURCES`), so kmock's own discovery (``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>``,
   ``/apis/<group>/<version>``, kept as is) lists them with kind, singular, short names, verbs,
   namespaced and subresources.  Requests to undeclared resources are 404 (add more with
   ``kube.handler.resources['group/version/plural'] = {...}`` before use).
7. **No garbage collection.**  Closed in ``_remove``: when an object is actually removed, every
   object with an ``ownerReferences`` entry for its uid is deleted too (recursively, honouring their
   finalizers; synchronously, i.e. "background" propagation that completes before the response);
   a dependent that still has another live owner only loses the dangling reference;
   ``propagationPolicy: Orphan`` removes the references instead.  Deleting a namespace deletes every
   object in it; the namespace itself waits (``deletionTimestamp`` + ``status.phase: Terminating``)
   until its objects with finalizers are gone.
8. **Patch flavours.**  kmock treats every PATCH as a recursive dict merge and does not know PUT.
   Closed by dispatching on ``Content-Type``:
   ``application/merge-patch+json`` (RFC 7386, ``null`` deletes);
   ``application/strategic-merge-patch+json`` (APPROXIMATED as a merge patch: lists are replaced,
   no patch directives);
   ``application/json-patch+json`` (RFC 6902: add/remove/replace/move/copy/test; a failed ``test``
   op is **422 Invalid**, which is what a real API server answers and what kopf's finalizer/status
   JSON-patches expect: kopf catches ``APIUnprocessableEntityError`` there, a 409 would crash it);
   ``application/apply-patch+yaml`` (server-side apply, APPROXIMATED: creates the object when
   missing with 201, else a recursive dict merge of the applied config into the live object where
   lists are replaced; fields dropped from the applied config are NOT removed and no
   ``managedFields`` are kept; ``fieldManager``/``force`` are accepted and ignored);
   PUT (replace; a stale ``metadata.resourceVersion`` is a 409 Conflict, so is a stale
   ``metadata.resourceVersion`` inside a merge patch).
9. **Watch.**  kmock streams a per-resource bus and ignores the request's ``resourceVersion`` and
   ``timeoutSeconds``.  Closed by an in-memory event history per resource (last
   :attr:`TepEmulator.event_history` events): a watch with ``resourceVersion=N`` (N != 0) replays
   events newer than N and then streams live ones (an N older than the history gets an ERROR event
   with a 410 Gone Status, upon which clients re-list); a watch without it (or with ``0``) starts
   with synthetic ADDED events for the current objects.  ``timeoutSeconds`` ends the stream;
   ``allowWatchBookmarks`` is accepted and ignored; single-object watches (``.../name?watch=true``)
   work.  Lists carry a real ``metadata.resourceVersion`` to start watching from.  All events
   (create, patches incl. status, apply, deletes, finalizer releases, GC) go through the same history.
10. **Errors.**  Kubernetes ``Status`` bodies with the real reasons: 404 NotFound, 409 AlreadyExists
    (create of an existing name), 409 Conflict (stale resourceVersion on PUT/merge-patch/delete
    preconditions), 422 Invalid (bad JSON-patch, failed ``test`` op, missing name, invalid name,
    non-dict body), 400 BadRequest (namespace mismatch, unparseable body, unknown content type),
    410 Gone (expired watch resourceVersion).  These expected API errors are not kept in kmock's
    ``handler.errors``; anything else there is an emulator bug (the ``kube`` fixture asserts there
    is none at teardown).

11. **Job defaults of the API server, and the Job controller's pods.**  A created Job gets what the
    real API server's Job strategy adds (unless ``spec.manualSelector``): the labels ``controller-uid``
    and ``job-name`` on its pod template, and ``spec.selector`` on the uid; from Kubernetes 1.27 also
    ``batch.kubernetes.io/controller-uid`` and ``batch.kubernetes.io/job-name``, and the selector is
    on ``batch.kubernetes.io/controller-uid``.  :attr:`TepEmulator.kubernetes_minor` (``Emulator(
    kubernetes_minor=26)``) picks the version.  No Job controller runs; :func:`job_pod` builds the
    pod the Job controller would create (template labels, the completion index annotation of an
    Indexed Job and, from 1.28, its label; a controller ownerReference to the Job), for the test
    harness that plays the controller.  Not emulated: the ``batch.kubernetes.io/job-tracking``
    finalizer the controller puts on its pods and removes once it counted them.
12. **Missed events.**  :meth:`Emulator.change_unseen` changes a stored object (a new
    resourceVersion) without a watch event, as a dropped watch connection would hide it: what
    only a client's periodic re-list can find.
13. **Scale (10,000 plans).**  No request scans every object: the live objects are indexed by
    (resource, namespace), by label (an equality requirement of a label selector looks its
    candidates up) and by owner uid (garbage collection); kmock's per-object history keeps the
    last :data:`KEPT_VERSIONS`; a watcher finds the events after its resourceVersion by
    bisection and is sent the stored objects themselves (no copy per watcher); lists are paged
    (``limit``/``continue``: each page continues after the previous page's last (namespace,
    name), with the first page's resourceVersion).  :meth:`Emulator.request_counts` counts the
    requests served by (verb, plural).
14. **Faults.**  :meth:`Emulator.restart` (every watch connection breaks, then ``410 Gone`` for
    any older resourceVersion, as a restarted API server's new watch cache), :meth:`drop_watches`
    (connections cut mid-stream), :meth:`fail_requests` (429 with Retry-After, or 5xx, for a
    while), :meth:`set_latency`, and :meth:`on_request` (run an action, e.g. SIGKILL a client,
    once, right before or after a given request is served; "before" answers 503 without serving
    it).  Requests whose User-Agent starts with :data:`TEST_USER_AGENT` (a test playing the
    controllers) are exempt from all of them.
15. **RBAC.**  :meth:`Emulator.authorize` gives a bearer token the grants of ClusterRoles and Roles
    (:func:`rbac_grants`: a ClusterRole's everywhere, a Role's in its namespace, subresources by
    name); a request with that token outside them gets the API server's ``403 Forbidden``.  The
    integration and fault tests give the operator's kubeconfig such a token with the chart's own
    RBAC (tests/integration/harness.py), so a call the chart does not grant fails there as on a
    cluster.  Other tokens, and none, may do anything.
16. **A new CRD is Established.**  The apiextensions controllers accept a new
    CustomResourceDefinition's names and mark it ``Established`` within a moment; the emulator does
    so on create (``status.acceptedNames`` with the defaulted ``singular`` and ``listKind``,
    ``storedVersions``, the conditions ``NamesAccepted`` and ``Established``), as clients that
    install a CRD wait for it (``bench/reconcile.py --kubeconfig``).

kmock 0.8 bugs worked around (in ``TepEmulator.__call__`` / ``_serve``, no patching of kmock):
``/api/v1/namespaces[/<name>[/status]]`` is mis-parsed as a namespace prefix (500 on list/create of
Namespaces), so such URLs are rewritten before kmock parses them; ``/apis/`` and ``/api/`` (the
kubernetes client's ``ApisApi``) are served as ``/apis`` and ``/api``; a nested ``kmock.Response``
status sticks to its reaction for later requests, so every emulated response has an explicit status.

Measured (2 cores, kubernetes client, sequential ``create_namespaced_cron_job``): raw kmock 500
creates in 24.3 s (first 100: 1.36 s, last 100: 8.10 s); this emulator 0.53 s (0.11 s / 0.10 s).

Kept from kmock as is: the aiohttp server & the reaction DSL (``kube.handler['get /x'] << 500``
still intercepts, with the default priority, before the emulation: an intercepted request does NOT
change the state, which is handy for failure injection), the discovery endpoints, ``/version``, the
Status shape of kmock's own errors (unknown endpoints), and ``handler.objects`` (kmock's
``ObjectsArray``: every stored version is kept in each object's ``.history``; soft-deleted objects
end with ``None``).  Mutating the DSL or ``handler.objects`` from the test thread races with the
server thread: wrap such calls in :meth:`Emulator.call`.

Not emulated (known gaps): a consistent snapshot across list pages (a later page shows the current
state), ``managedFields`` and field ownership, strategic-merge directives, admission/validation against
schemas, defaulting, ``dryRun``, watch bookmarks, ``resourceVersionMatch``/``sendInitialEvents``,
foreground deletion (treated as background), the existence of a namespace is not required to
create objects in it, and no controllers run (no Jobs from CronJobs, no Pods from Jobs).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import collections
import contextlib
import copy
import dataclasses
import datetime
import json
import logging
import pathlib
import random
import re
import string
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import aiohttp.web
import attrs
import kmock
import kubernetes
import yaml
from kmock._internal import apps

T = TypeVar("T")
# What an RBAC rule allows: (namespace or None for cluster-wide, API group, resource[/subresource], verb).
Grant = tuple[str | None, str, str, str]

#: Requests of a client whose User-Agent starts so (a test playing Kubernetes' controllers) are
#: exempt from injected faults: latency, failures and request triggers hit the operator only.
TEST_USER_AGENT = "tep-tests"
#: Versions of each object kept in kmock's ``objects[...].history`` (the emulator needs only the last).
KEPT_VERSIONS = 4
#: The Kubernetes 1.x the emulator behaves like, unless told otherwise.
KUBERNETES_MINOR = 30
#: From this 1.x on the API server adds the ``batch.kubernetes.io/`` Job labels ...
JOB_LABELS_GA_MINOR = 27
#: ... and the Job controller labels an Indexed Job's pods with their index (PodIndexLabel).
POD_INDEX_LABEL_MINOR = 28
LEGACY_JOB_NAME, LEGACY_CONTROLLER_UID = "job-name", "controller-uid"
JOB_NAME, CONTROLLER_UID = "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"

logger = logging.getLogger(__name__)

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

#: Resources served by the emulator: "group/version/plural" -> kmock ResourceDict fields.
RESOURCES: dict[str, dict[str, Any]] = {
    "tep.dev/v1alpha1/testplans": dict(
        kind="TestPlan",
        singular="testplan",
        shortnames=["tp"],
        namespaced=True,
        subresources=["status"],
    ),
    "batch/v1/cronjobs": dict(
        kind="CronJob",
        singular="cronjob",
        shortnames=["cj"],
        namespaced=True,
        subresources=["status"],
    ),
    "batch/v1/jobs": dict(kind="Job", singular="job", namespaced=True, subresources=["status"]),
    "v1/pods": dict(kind="Pod", singular="pod", shortnames=["po"], namespaced=True, subresources=["status"]),
    "v1/events": dict(kind="Event", singular="event", shortnames=["ev"], namespaced=True),
    "events.k8s.io/v1/events": dict(kind="Event", singular="event", shortnames=["ev"], namespaced=True),
    "v1/namespaces": dict(
        kind="Namespace",
        singular="namespace",
        shortnames=["ns"],
        namespaced=False,
        subresources=["status"],
    ),
    "v1/configmaps": dict(kind="ConfigMap", singular="configmap", shortnames=["cm"], namespaced=True),
    "v1/secrets": dict(kind="Secret", singular="secret", namespaced=True),
    "v1/persistentvolumeclaims": dict(
        kind="PersistentVolumeClaim",
        singular="persistentvolumeclaim",
        shortnames=["pvc"],
        namespaced=True,
        subresources=["status"],
    ),
    "coordination.k8s.io/v1/leases": dict(kind="Lease", singular="lease", namespaced=True),
    # kopf's peering (the chart's CRDs have no status subresource: kopf patches the object)
    "kopf.dev/v1/kopfpeerings": dict(kind="KopfPeering", singular="kopfpeering", namespaced=True),
    "kopf.dev/v1/clusterkopfpeerings": dict(
        kind="ClusterKopfPeering", singular="clusterkopfpeering", namespaced=False
    ),
    "apiextensions.k8s.io/v1/customresourcedefinitions": dict(
        kind="CustomResourceDefinition",
        singular="customresourcedefinition",
        shortnames=["crd", "crds"],
        namespaced=False,
        subresources=["status"],
    ),
}

_NAMESPACES = kmock.resource("", "v1", "namespaces")
_JOBS = kmock.resource("batch", "v1", "jobs")
_CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
_NAMESPACE_URL_RE = re.compile(r"^/api/v1/namespaces((?:/[^/]+(?:/(?:status|finalize))?)?)/?$")
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_ALNUM = string.ascii_lowercase + string.digits

Key = tuple[kmock.resource, str | None, str]  # (resource, namespace, name)


# --------------------------------------------------------------------------------------------------
# Errors in the Kubernetes Status shape.
# --------------------------------------------------------------------------------------------------


@attrs.frozen
class ApiError(kmock.KubernetesError):
    """An expected API error (not an emulator bug): rendered as a Status without a traceback."""


def _not_found(resource: kmock.resource, name: str | None) -> ApiError:
    what = resource.plural if not resource.group else f"{resource.plural}.{resource.group}"
    return ApiError(
        status=404,
        reason="NotFound",
        message=f'{what} "{name}" not found',
        details={"name": name, "group": resource.group, "kind": resource.plural},
    )


def _conflict(reason: str, message: str, resource: kmock.resource, name: str | None) -> ApiError:
    return ApiError(
        status=409,
        reason=reason,
        message=message,
        details={"name": name, "group": resource.group, "kind": resource.plural},
    )


def _invalid(message: str) -> ApiError:
    return ApiError(status=422, reason="Invalid", message=message, details={})


def _bad_request(message: str) -> ApiError:
    return ApiError(status=400, reason="BadRequest", message=message, details={})


def _status_body(code: int, reason: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "details": details or {},
    }


# --------------------------------------------------------------------------------------------------
# Pure helpers: patches, selectors.
# --------------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (returns a new value; ``None`` deletes keys; lists are replaced)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _invalid(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _walk_to_parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _invalid(f"JSON patch path not found: /{'/'.join(parts)}")
    return node, parts[-1]


def _get_at(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent, last = _walk_to_parent(doc, parts)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise _invalid(f"JSON patch path not found: /{'/'.join(parts)}")


def _add_at(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _walk_to_parent(doc, parts)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise _invalid(f"JSON patch index out of range: /{'/'.join(parts)}")
        parent.insert(index, value)
    else:
        raise _invalid(f"JSON patch cannot add into a scalar: /{'/'.join(parts)}")
    return doc


def _remove_at(doc: Any, parts: list[str]) -> Any:
    _get_at(doc, parts)  # raises if absent
    parent, last = _walk_to_parent(doc, parts)
    if isinstance(parent, dict):
        del parent[last]
    else:
        del parent[int(last)]
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (returns a new document). A failed ``test`` op is a 422, as in Kubernetes."""
    if not isinstance(ops, list):
        raise _bad_request("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise _invalid(f"invalid JSON patch operation: {op!r}")
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "test":
            try:
                actual = _get_at(doc, parts)
            except ApiError:
                actual = None
            if actual != op.get("value"):
                raise _invalid(
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {op['path']} failed: {actual!r} != {op.get('value')!r}"
                )
        elif kind == "add":
            doc = _add_at(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove_at(doc, parts)
        elif kind == "replace":
            doc = (
                _add_at(_remove_at(doc, parts), parts, copy.deepcopy(op.get("value")))
                if parts
                else copy.deepcopy(op.get("value"))
            )
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = copy.deepcopy(_get_at(doc, source))
            if kind == "move":
                doc = _remove_at(doc, source)
            doc = _add_at(doc, parts, value)
        else:
            raise _invalid(f"unknown JSON patch operation: {kind!r}")
    return doc


_REQUIREMENT_RE = re.compile(
    r"^\s*(?:(?P<notexists>!\s*(?P<nkey>[^\s!=,()]+))"
    r"|(?P<key>[^\s!=,()]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?)\s*$"
)


def _split_selector(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def parse_label_selector(selector: str) -> Callable[[Mapping[str, str]], bool]:
    """Compile a Kubernetes label selector string into a predicate over a labels dict."""
    checks: list[Callable[[Mapping[str, str]], bool]] = []
    for requirement in _split_selector(selector or ""):
        match = _REQUIREMENT_RE.match(requirement)
        if not match:
            raise _bad_request(f"unable to parse requirement: {requirement!r}")
        if match["notexists"]:
            checks.append(lambda labels, k=match["nkey"]: k not in labels)
        elif match["op"] in ("=", "=="):
            checks.append(lambda labels, k=match["key"], v=match["value"]: labels.get(k) == v)
        elif match["op"] == "!=":
            checks.append(lambda labels, k=match["key"], v=match["value"]: labels.get(k) != v)
        elif match["setop"]:
            values = {v.strip() for v in match["values"].split(",") if v.strip()}
            if match["setop"] == "in":
                checks.append(lambda labels, k=match["key"], vs=values: labels.get(k) in vs)
            else:
                checks.append(lambda labels, k=match["key"], vs=values: labels.get(k) not in vs)
        else:
            checks.append(lambda labels, k=match["key"]: k in labels)
    return lambda labels: all(check(labels) for check in checks)


def label_equalities(selector: str) -> list[tuple[str, str]]:
    """The ``key=value`` requirements of a label selector: what an index can look up."""
    found = []
    for requirement in _split_selector(selector or ""):
        match = _REQUIREMENT_RE.match(requirement)
        if match and match["op"] in ("=", "=="):
            found.append((match["key"], match["value"]))
    return found


def parse_field_selector(selector: str) -> Callable[[Mapping[str, Any]], bool]:
    """Compile a field selector (``path=v``, ``path==v``, ``path!=v``; AND-ed) into an object predicate."""
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for requirement in _split_selector(selector or ""):
        match = re.match(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*(.*?)\s*$", requirement)
        if not match:
            raise _bad_request(f"invalid field selector: {requirement!r}")
        path, op, value = match.groups()

        def _get(obj: Mapping[str, Any], path: str = path) -> str:
            node: Any = obj
            for part in path.split("."):
                node = node.get(part) if isinstance(node, Mapping) else None
            return "" if node is None else str(node)

        if op == "!=":
            checks.append(lambda obj, g=_get, v=value: g(obj) != v)
        else:
            checks.append(lambda obj, g=_get, v=value: g(obj) == v)
    return lambda obj: all(check(obj) for check in checks)


def _crd_established(crd: dict[str, Any]) -> dict[str, Any]:
    """The status the apiextensions controllers give a new CRD: its names accepted, Established."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    kind = names.get("kind", "")
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", f"{kind}List")
    now = _now()
    return {
        "acceptedNames": names,
        "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything that counts for ``generation``: all but metadata/status (and apiVersion/kind)."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


# --------------------------------------------------------------------------------------------------
# The emulator (the kmock handler).
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Event:
    rv: int
    namespace: str | None
    name: str
    old: dict[str, Any] | None  # None: the object did not exist before (ADDED)
    new: dict[str, Any] | None  # None: the object is gone (DELETED), ``final`` holds its last state
    final: dict[str, Any]


@attrs.define(kw_only=True)
class TepEmulator(kmock.KubernetesEmulator):
    """
    kmock's ``KubernetesEmulator`` with the gaps listed in this module's docstring closed.

    Extension points used: the class is a subclass; it overrides ``_handle`` (to trim the request
    log and to skip kmock's mutate-before-match step, calling the generic ``RawHandler._handle``
    matching instead), ``_render_error`` (for its own expected errors), and the fallback serving
    methods; and it registers one reaction, ``(self ** -1000)[<declared resource>] << self._serve``,
    above kmock's fallbacks but below any user reaction.  The state is kept in kmock's
    ``handler.objects`` so kmock-style assertions keep working.
    """

    record_requests: bool = False  # True: keep kmock's full request log (and its O(n) matching).
    event_history: int = 10_000  # watch events kept per resource for resourceVersion replays.
    kubernetes_minor: int = KUBERNETES_MINOR  # the Kubernetes 1.x whose Job defaults are emulated.

    _inflight: dict[int, kmock.Request] = attrs.field(factory=dict, init=False)
    _rv: int = attrs.field(default=0, init=False)
    _uids: dict[str, Key] = attrs.field(factory=dict, init=False)  # uid -> key of live objects
    _events: dict[kmock.resource, list[_Event]] = attrs.field(factory=dict, init=False)
    _expired_rv: dict[kmock.resource, int] = attrs.field(factory=dict, init=False)
    _changed: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    _stopping: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    # Indexes of the live objects, kept by _commit/_remove, so that no request scans them all.
    _by_place: dict[tuple[kmock.resource, str | None], dict[str, dict[str, Any]]] = attrs.field(
        factory=dict, init=False
    )  # (resource, namespace) -> name -> object
    _by_label: dict[tuple[kmock.resource, str, str], set[Key]] = attrs.field(factory=dict, init=False)
    _dependents: dict[str, set[Key]] = attrs.field(factory=dict, init=False)  # owner uid -> keys
    # Faults, injected by tests (see Emulator.restart, drop_watches, fail_requests, latency).
    _watch_epoch: int = attrs.field(default=0, init=False)  # bumped: every watch stream ends
    _failing: tuple[float, int, str] = attrs.field(default=(0.0, 0, ""), init=False)  # until, status, reason
    latency: float = attrs.field(default=0.0, init=False)  # seconds added to every request
    # RBAC: bearer token -> what it may do, as (namespace or None for cluster-wide, group, resource
    # [/subresource], verb); a request with another token, or none, is the tests' admin (Emulator.authorize).
    grants: dict[str, frozenset[Grant]] = attrs.field(factory=dict, init=False)
    # One-shot actions on a request: (verb, plural, subresource, "before"|"after", action).
    _triggers: list[tuple[str, str, str | None, str, Callable[[], None]]] = attrs.field(
        factory=list, init=False
    )
    #: Requests served, by (verb, plural): what a benchmark counts per plan. Bounded by nature.
    request_counts: collections.Counter[tuple[str, str]] = attrs.field(
        factory=collections.Counter, init=False
    )

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for key, info in RESOURCES.items():
            self.resources[key] = dict(info, verbs=_VERBS)
        (self**-1000)[self._is_served] << self._serve

    # -- kmock plumbing ----------------------------------------------------------------------------

    def _is_served(self, request: kmock.Request) -> bool:
        resource = request.resource
        return bool(resource is not None and resource.plural and resource in self.resources)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock 0.8's URL parser reads "/api/v1/namespaces[/x]" as a namespace prefix (it crashes on
        # "/api/v1/namespaces" and misparses "/api/v1/namespaces/x"). Rewrite such URLs of the
        # Namespace resource itself into an equivalent form that it parses as resource "namespaces"
        # (the dummy namespace "-" is ignored for this cluster-scoped resource).
        # Also, kmock serves "/apis" & "/api" but not "/apis/" & "/api/" (used by the kubernetes client).
        path = raw_request.rel_url.path
        if path in ("/apis/", "/api/"):
            raw_request = raw_request.clone(rel_url=raw_request.rel_url.with_path(path.rstrip("/")))
        match = _NAMESPACE_URL_RE.match(path)
        if match:
            rel_url = raw_request.rel_url.with_path(f"/api/v1/namespaces/-/namespaces{match[1] or ''}")
            raw_request = raw_request.clone(rel_url=rel_url.with_query(raw_request.rel_url.query))
        return await super().__call__(raw_request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        self._inflight[id(request)] = request
        try:
            resource = request.resource
            tester = request.headers.get("User-Agent", "").startswith(TEST_USER_AGENT)
            if resource is not None and resource.plural:
                self.request_counts[(_verb(request), resource.plural)] += 1
                forbidden = self._forbidden(request)
                if forbidden:
                    return aiohttp.web.json_response(forbidden, status=403)
                if not tester and self._fire(request, "before"):
                    # the client was stopped before its request was served: it never lands
                    return aiohttp.web.json_response(_status_body(503, "Killed", "client killed"), status=503)
                if self.latency and not tester:
                    await asyncio.sleep(self.latency)
                until, code, reason = self._failing
                if time.monotonic() < until and not tester:
                    headers = {"Retry-After": "1"} if code == 429 else {}
                    body = _status_body(code, reason, f"injected fault: {reason}")
                    return aiohttp.web.json_response(body, status=code, headers=headers)
            if not self.record_requests:
                # Only in-flight requests can still be matched; everything else only slows matching.
                # This one first: a reaction's filter walks the log in order, applying its criteria
                # to each request until it meets this one (at the end, each request cost a filter
                # call per request in flight). The reactions' own logs are trimmed alike.
                self._requests[:] = [request, *(r for r in self._inflight.values() if r is not request)]
                for payload in self._payloads:
                    payload._requests[:] = [r for r in payload._requests if id(r) in self._inflight]
                for errors in self._errors:
                    errors[:] = [e for e in errors if not isinstance(e, kmock.KubernetesError)]
            # Skip KubernetesEmulator._handle (its mutate-before-match of raw dicts); mutations
            # happen in self._serve when the request reaches the emulation (not intercepted).
            response = await apps.RawHandler._handle(self, request)
            if resource is not None and resource.plural and not tester:
                self._fire(request, "after")
            return response
        finally:
            self._inflight.pop(id(request), None)

    def _forbidden(self, request: kmock.Request) -> dict[str, Any] | None:
        """The API server's 403 for a request its token's grants do not cover (None: allowed)."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        grants = self.grants.get(token)
        if grants is None:
            return None
        resource, verb, namespace = request.resource, _verb(request), request.namespace
        name = resource.plural + (f"/{request.subresource}" if request.subresource else "")
        if {(None, resource.group, name, verb), (namespace, resource.group, name, verb)} & grants:
            return None
        place = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        message = (
            f'{resource.plural} is forbidden: User "{token}" cannot {verb} resource "{name}" in API group '
            f'"{resource.group}"{place}'
        )
        return _status_body(403, "Forbidden", message, {"group": resource.group, "kind": resource.plural})

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, ApiError):
            body = _status_body(exc.status, exc.reason or "", exc.message or "", exc.details)
            return aiohttp.web.json_response(body, status=exc.status)
        return await super()._render_error(exc)

    def stop_watches(self) -> None:
        """End all watch streams (called at shutdown so that the server closes quickly)."""
        self._stopping.set()
        self._changed.set()

    # -- faults ------------------------------------------------------------------------------------

    def on_request(
        self, verb: str, plural: str, action: Callable[[], None], *, subresource: str | None = None,
        when: str = "before",
    ) -> None:  # fmt: skip
        """Run `action` once, on the next such request: "before" it is served (e.g. kill the
        client: the write never lands) or "after" (it landed; the client never hears of it)."""
        self._triggers.append((verb, plural, subresource, when, action))

    def _fire(self, request: kmock.Request, when: str) -> bool:
        """Run the triggers armed for this request; True if one was."""
        verb, plural = _verb(request), request.resource.plural
        for trigger in list(self._triggers):
            t_verb, t_plural, t_sub, t_when, action = trigger
            if (t_verb, t_plural, t_sub, t_when) == (verb, plural, request.subresource, when):
                self._triggers.remove(trigger)
                action()
                return True
        return False

    def drop_watches(self) -> None:
        """Break every watch connection (as a network cut would); resourceVersions stay valid."""
        self._watch_epoch += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def restart(self) -> None:
        """What an API server restart looks like to a client: every watch connection breaks,
        and the new watch cache starts at the current resourceVersion, so a watch from any
        older one gets ``410 Gone`` (an ERROR event) and the client must list again."""
        for resource in self.resources:
            self._expired_rv[resource] = self._rv  # a watch from now on works; from before: 410
            self._events.pop(resource, None)
        self.drop_watches()

    def fail_requests(self, seconds: float, status: int = 503, reason: str = "ServiceUnavailable") -> None:
        """For `seconds`, answer every resource request with `status` (429: with Retry-After)."""
        self._failing = (time.monotonic() + seconds, status, reason)

    # -- state -------------------------------------------------------------------------------------

    def _info(self, resource: kmock.resource) -> kmock.ResourceInfo:
        return self.resources[resource]

    def _has_status(self, resource: kmock.resource) -> bool:
        return "status" in self._info(resource).subresources

    def _get(self, key: Key) -> dict[str, Any] | None:
        return self._by_place.get((key[0], key[1]), {}).get(key[2])

    def _live(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        for (resource, namespace), objects in list(self._by_place.items()):
            for name, obj in list(objects.items()):
                yield (resource, namespace, name), obj

    def _in_namespace(self, namespace: str) -> list[tuple[Key, dict[str, Any]]]:
        return [
            ((resource, ns, name), obj)
            for (resource, ns), objects in list(self._by_place.items())
            if ns == namespace
            for name, obj in list(objects.items())
        ]

    def _index(self, key: Key, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Move `key` in the indexes from its `old` state to its `new` one (None: absent)."""
        resource = key[0]
        for state, add in ((old, False), (new, True)):
            if state is None:
                continue
            meta = state["metadata"]
            label_keys = [(resource, k, v) for k, v in (meta.get("labels") or {}).items()]
            owner_uids = [ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("uid")]
            for label_key in label_keys:
                if add:
                    self._by_label.setdefault(label_key, set()).add(key)
                else:
                    self._by_label.get(label_key, set()).discard(key)
            for uid in owner_uids:
                if add:
                    self._dependents.setdefault(uid, set()).add(key)
                else:
                    self._dependents.get(uid, set()).discard(key)
        place = self._by_place.setdefault((resource, key[1]), {})
        if new is None:
            place.pop(key[2], None)
        else:
            place[key[2]] = new

    def _store(self, key: Key, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """Keep `new` as the object's state: in kmock's objects (a short history) and the indexes."""
        if key in self.objects:
            history = self.objects[key].history
            history.append(new)
            if len(history) > 2 * KEPT_VERSIONS:
                del history[:-KEPT_VERSIONS]  # bounded: every version of every object adds up
        else:
            self.objects[key] = new
        self._index(key, old, new)

    def _emit(
        self,
        resource: kmock.resource,
        key: Key,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        final: dict[str, Any],
    ) -> None:
        events = self._events.setdefault(resource, [])
        events.append(_Event(self._rv, key[1], key[2], old, new, final))
        if len(events) > 2 * self.event_history:  # trimmed in halves: amortised O(1) per event
            self._expired_rv[resource] = events[-self.event_history - 1].rv
            del events[: -self.event_history]
        self._changed.set()
        self._changed = asyncio.Event()

    def _commit(self, key: Key, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
        """Store a new state (create or update): bump rv/generation; no-op if nothing changed."""
        resource = key[0]
        if old is not None:
            if new == old:
                return old
            meta = new["metadata"]
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            meta["generation"] = old["metadata"].get("generation", 1)
            if new == old:
                return old
            if _spec_of(new) != _spec_of(old):
                meta["generation"] = meta["generation"] + 1
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        self._store(key, old, new)
        self._uids[new["metadata"]["uid"]] = key
        self._emit(resource, key, old, new, new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(key, new, propagation="Background")
        return new

    def _remove(self, key: Key, obj: dict[str, Any], *, propagation: str) -> dict[str, Any]:
        """Actually remove the object (emit DELETED), then garbage-collect its dependents."""
        self._rv += 1
        final = copy.deepcopy(obj)
        final["metadata"]["resourceVersion"] = str(self._rv)
        self.objects[key].delete()
        self._index(key, obj, None)
        uid = obj["metadata"]["uid"]
        self._uids.pop(uid, None)
        self._emit(key[0], key, obj, None, final)
        self._collect_garbage(uid, orphan=propagation == "Orphan")
        if key[0] == _NAMESPACES:
            self._delete_namespace_contents(key[2])
        elif key[1] is not None:
            self._maybe_finish_namespace(key[1])
        return final

    def _mark_deleted(self, key: Key, obj: dict[str, Any], *, propagation: str) -> dict[str, Any]:
        """DELETE semantics: finalizers -> set deletionTimestamp; none -> remove now."""
        if obj["metadata"].get("deletionTimestamp"):
            return obj  # already being deleted
        if obj["metadata"].get("finalizers") or key[0] == _NAMESPACES:
            new = copy.deepcopy(obj)
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if key[0] == _NAMESPACES:
                new.setdefault("status", {})["phase"] = "Terminating"
                new = self._commit(key, obj, new)
                self._delete_namespace_contents(key[2])
                return self._maybe_finish_namespace(key[2]) or new
            return self._commit(key, obj, new)
        return self._remove(key, obj, propagation=propagation)

    def _collect_garbage(self, uid: str, *, orphan: bool) -> None:
        for key in sorted(self._dependents.pop(uid, set()), key=lambda k: (k[1] or "", k[2])):
            current = self._get(key)  # may have been removed by a recursive cascade meanwhile
            if current is None:
                continue
            refs = current["metadata"].get("ownerReferences") or []
            others = [ref for ref in refs if ref.get("uid") != uid]
            if orphan or any(ref.get("uid") in self._uids for ref in others):
                new = copy.deepcopy(current)
                new["metadata"]["ownerReferences"] = others
                if not others:
                    del new["metadata"]["ownerReferences"]
                self._commit(key, current, new)
            else:
                self._mark_deleted(key, current, propagation="Background")

    def _delete_namespace_contents(self, namespace: str) -> None:
        for key, obj in self._in_namespace(namespace):
            if key[1] == namespace and key[0] != _NAMESPACES and self._get(key) is not None:
                self._mark_deleted(key, obj, propagation="Background")

    def _maybe_finish_namespace(self, namespace: str) -> dict[str, Any] | None:
        ns_key: Key = (_NAMESPACES, None, namespace)
        ns = self._get(ns_key)
        if ns is None or not ns["metadata"].get("deletionTimestamp") or ns["metadata"].get("finalizers"):
            return None
        if any(objects for (_, ns), objects in self._by_place.items() if ns == namespace):
            return None
        return self._remove(ns_key, ns, propagation="Background")

    # -- request serving ---------------------------------------------------------------------------

    async def _serve(self, request: kmock.Request) -> kmock.Response:
        """The emulation itself: one entry point for all requests to declared resources."""
        # NB: always give an explicit status: kmock 0.8 keeps a nested Response's status on the
        # reaction for all later requests (a 201 of a create would stick to later GETs otherwise).
        result = self._dispatch(request)
        if isinstance(result, kmock.Response):
            return result
        return kmock.Response(status=200, payload=result)

    def _dispatch(self, request: kmock.Request) -> Any:
        resource: kmock.resource = request.resource
        info = self._info(resource)
        namespaced = bool(info.namespaced)
        if (
            namespaced
            and request.namespace is None
            and request.method != kmock.method.POST
            and request.name is not None
        ):
            raise _not_found(resource, request.name)
        namespace = request.namespace if namespaced else None
        sub = request.subresource
        if sub is not None and not (sub == "status" and self._has_status(resource)):
            raise ApiError(
                status=404,
                reason="NotFound",
                message=f"the server could not find the "
                f"requested resource ({request.method.value} {resource.plural}/{sub})",
            )
        method = request.method
        params = request.params

        if method == kmock.method.GET and params.get("watch") in ("true", "1"):
            return self._watch(request, resource, namespace)
        if method == kmock.method.GET and request.name is None:
            return self._list(request, resource, namespace)
        if method == kmock.method.GET:
            obj = self._get((resource, namespace, request.name))
            if obj is None:
                raise _not_found(resource, request.name)
            return obj
        if method == kmock.method.POST and request.name is None:
            return kmock.Response(
                status=201, payload=self._create(request, resource, namespace, self._body(request, dict))
            )
        if method == kmock.method.DELETE and request.name is None:
            return self._delete_collection(request, resource, namespace)
        if method == kmock.method.DELETE:
            return self._delete(request, resource, namespace)
        if method in (kmock.method.PATCH, kmock.method.PUT) and request.name is not None:
            return self._update(request, resource, namespace)
        raise ApiError(
            status=405,
            reason="MethodNotAllowed",
            message=f"{method.value} is not supported on this URL",
            details={},
        )

    def _body(self, request: kmock.Request, expected: type | tuple[type, ...]) -> Any:
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
        text = request.text
        try:
            if content_type == "application/apply-patch+yaml":
                # Clients send JSON (a subset of YAML): parse it as such, fast; real YAML with libyaml.
                try:
                    body = json.loads(text)
                except ValueError:
                    body = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            elif content_type.endswith("json") or not text:
                body = json.loads(text) if text else None
            else:
                raise _bad_request(f"unsupported Content-Type: {content_type!r}")
        except (ValueError, yaml.YAMLError) as e:
            raise _bad_request(f"cannot parse the request body: {e}") from None
        if not isinstance(body, expected):
            raise _invalid(f"the request body must be a JSON {'list' if expected is list else 'object'}")
        return body

    def _create(
        self, request: kmock.Request, resource: kmock.resource, namespace: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        info = self._info(resource)
        obj = copy.deepcopy(body)
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise _invalid("metadata must be an object")
        if info.namespaced:
            body_ns = meta.get("namespace")
            if namespace is not None and body_ns and body_ns != namespace:
                raise _bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            namespace = namespace or body_ns
            if not namespace:
                raise _not_found(resource, meta.get("name"))
            meta["namespace"] = namespace
        else:
            namespace = None
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise _invalid("metadata.name: Required value: name or generateName is required")
            for _ in range(100):
                candidate = prefix + "".join(random.choices(_ALNUM, k=5))
                if self._get((resource, namespace, candidate)) is None:
                    meta["name"] = candidate
                    break
        name = meta["name"]
        if not isinstance(name, str) or len(name) > 253 or not _NAME_RE.match(name):
            raise _invalid(
                f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain "
                f"must consist of lower case alphanumeric characters, '-' or '.'"
            )
        key: Key = (resource, namespace, name)
        if self._get(key) is not None:
            what = resource.plural if not resource.group else f"{resource.plural}.{resource.group}"
            raise _conflict("AlreadyExists", f'{what} "{name}" already exists', resource, name)
        group_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
        obj["apiVersion"] = group_version
        obj["kind"] = info.kind
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta["creationTimestamp"] = _now()
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(field, None)
        if self._has_status(resource):
            obj.pop("status", None)
        if resource == _JOBS:
            _job_defaults(obj, self.kubernetes_minor)
        if resource == _NAMESPACES:
            obj["status"] = {"phase": "Active"}
        if resource == _CRDS:
            obj["status"] = _crd_established(obj)
        return self._commit(key, None, obj)

    def _update(
        self, request: kmock.Request, resource: kmock.resource, namespace: str | None
    ) -> kmock.Payload:
        key: Key = (resource, namespace, request.name)
        old = self._get(key)
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
        is_status = request.subresource == "status"
        if request.method == kmock.method.PUT:
            body = self._body(request, dict)
            if old is None:
                raise _not_found(resource, request.name)
            new = copy.deepcopy(body)
            new.setdefault("metadata", {})
            sent_rv = new["metadata"].get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise _conflict(
                    "Conflict",
                    "Operation cannot be fulfilled: the object has been modified; "
                    "please apply your changes to the latest version and try again",
                    resource,
                    request.name,
                )
        elif content_type == "application/json-patch+json":
            ops = self._body(request, list)
            if old is None:
                raise _not_found(resource, request.name)
            new = json_patch(old, ops)
        elif content_type in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/json",
        ):
            patch = self._body(request, dict)
            if old is None:
                raise _not_found(resource, request.name)
            sent_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise _conflict(
                    "Conflict",
                    "Operation cannot be fulfilled: the object has been modified",
                    resource,
                    request.name,
                )
            new = merge_patch(old, patch)
        elif content_type == "application/apply-patch+yaml":
            applied = self._body(request, dict)
            if old is None:
                if is_status:
                    raise _not_found(resource, request.name)
                applied.setdefault("metadata", {}).setdefault("name", request.name)
                if applied["metadata"]["name"] != request.name:
                    raise _bad_request("the name of the object does not match the name on the URL")
                return kmock.Response(status=201, payload=self._create(request, resource, namespace, applied))
            new = merge_patch(old, _drop_nulls(applied))
        else:
            raise ApiError(
                status=415,
                reason="UnsupportedMediaType",
                message=f"the body of the request was in an unknown format: {content_type}",
            )

        if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
            raise _invalid("the patched object must be a JSON object with metadata")
        if is_status:  # only the status changes
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        else:
            if self._has_status(resource):  # the status never changes via the main resource
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            # Server-owned and immutable metadata.
            meta = new["metadata"]
            for field in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "name",
                "namespace",
            ):
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
                else:
                    meta.pop(field, None)
            new["apiVersion"], new["kind"] = old.get("apiVersion"), old.get("kind")
            if old["metadata"].get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
                if added:
                    raise _invalid(
                        f"metadata.finalizers: Forbidden: no new finalizers can be added if "
                        f"the object is being deleted, found new finalizers {sorted(added)!r}"
                    )
        result = self._commit(key, old, new)
        return result

    def _delete(
        self, request: kmock.Request, resource: kmock.resource, namespace: str | None
    ) -> kmock.Payload:
        key: Key = (resource, namespace, request.name)
        obj = self._get(key)
        if obj is None:
            raise _not_found(resource, request.name)
        options = self._body(request, (dict, type(None))) or {}
        preconditions = options.get("preconditions") or {}
        for field in ("uid", "resourceVersion"):
            if preconditions.get(field) and preconditions[field] != obj["metadata"].get(field):
                raise _conflict("Conflict", f"Precondition failed: {field} mismatch", resource, request.name)
        propagation = (
            options.get("propagationPolicy") or request.params.get("propagationPolicy") or "Background"
        )
        if options.get("orphanDependents") is True:
            propagation = "Orphan"
        return self._mark_deleted(key, obj, propagation=propagation)

    def _delete_collection(
        self, request: kmock.Request, resource: kmock.resource, namespace: str | None
    ) -> kmock.Payload:
        selected = self._select(request, resource, namespace)
        for key, obj in selected:
            if self._get(key) is not None:
                self._mark_deleted(key, obj, propagation="Background")
        return self._list_body(resource, [obj for _, obj in selected])

    def _selector(self, request: kmock.Request) -> Callable[[dict[str, Any]], bool]:
        labels = parse_label_selector(request.params.get("labelSelector", ""))
        fields = parse_field_selector(request.params.get("fieldSelector", ""))
        name = request.name
        return lambda obj: (
            (name is None or obj["metadata"].get("name") == name)
            and labels(obj["metadata"].get("labels") or {})
            and fields(obj)
        )

    def _candidates(
        self, request: kmock.Request, resource: kmock.resource, namespace: str | None
    ) -> Iterator[tuple[Key, dict[str, Any]]]:
        """The live objects a request can select, found through the indexes: one name, an
        equality requirement of the label selector, or the namespace; never every object."""
        if request.name is not None:
            key: Key = (resource, namespace, request.name)
            obj = self._get(key)
            if obj is not None:
                yield key, obj
            return
        equal = label_equalities(request.params.get("labelSelector", ""))
        if equal:
            keys = min((self._by_label.get((resource, k, v), set()) for k, v in equal), key=len)
            for key in list(keys):
                obj = self._get(key)
                if obj is not None and (namespace is None or key[1] == namespace):
                    yield key, obj
            return
        for (res, ns), objects in list(self._by_place.items()):
            if res == resource and (namespace is None or ns == namespace):
                for name, obj in list(objects.items()):
                    yield (res, ns, name), obj

    def _select(
        self, request: kmock.Request, resource: kmock.resource, namespace: str | None
    ) -> list[tuple[Key, dict[str, Any]]]:
        check = self._selector(request)
        selected = [(key, obj) for key, obj in self._candidates(request, resource, namespace) if check(obj)]
        return sorted(selected, key=lambda item: (item[0][1] or "", item[0][2]))

    def _list_body(
        self, resource: kmock.resource, items: list[dict[str, Any]], rv: int | None = None, token: str = ""
    ) -> dict[str, Any]:
        group_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
        metadata: dict[str, Any] = {"resourceVersion": str(self._rv if rv is None else rv)}
        if token:
            metadata["continue"] = token
        return {
            "apiVersion": group_version,
            "kind": f"{self._info(resource).kind}List",
            "metadata": metadata,
            "items": items,
        }

    def _list(self, request: kmock.Request, resource: kmock.resource, namespace: str | None) -> kmock.Payload:
        """A list, in pages when asked (``limit``, ``continue``): each page goes on after the
        previous page's last (namespace, name) and carries the first page's resourceVersion."""
        selected = self._select(request, resource, namespace)
        limit = int(request.params.get("limit") or 0)
        rv, after = self._rv, None
        if request.params.get("continue"):
            try:
                rv, after_ns, after_name = json.loads(base64.urlsafe_b64decode(request.params["continue"]))
            except (ValueError, TypeError):
                raise _bad_request("invalid continue token") from None
            after = (after_ns, after_name)
            selected = [item for item in selected if (item[0][1] or "", item[0][2]) > after]
        token = ""
        if limit and len(selected) > limit:
            selected = selected[:limit]
            last = selected[-1][0]
            token = base64.urlsafe_b64encode(json.dumps([rv, last[1] or "", last[2]]).encode()).decode()
        return self._list_body(resource, [obj for _, obj in selected], rv, token)

    async def _watch(
        self, request: kmock.Request, resource: kmock.resource, namespace: str | None
    ) -> AsyncIterator[Any]:
        check = self._selector(request)
        timeout = float(request.params.get("timeoutSeconds") or 0) or None
        deadline = None if timeout is None else time.monotonic() + timeout
        since = request.params.get("resourceVersion") or ""

        def matches(ev_ns: str | None, obj: dict[str, Any] | None) -> bool:
            return obj is not None and (namespace is None or ev_ns == namespace) and check(obj)

        initial: list[dict[str, Any]] = []
        if since in ("", "0"):
            last_rv = self._rv
            initial = [
                {"type": "ADDED", "object": obj} for _, obj in self._select(request, resource, namespace)
            ]
        else:
            try:
                last_rv = int(since)
            except ValueError:
                raise _bad_request(f"invalid resourceVersion: {since!r}") from None
            if last_rv < self._expired_rv.get(resource, 0):
                gone = _status_body(410, "Expired", f"too old resource version: {since}")
                initial = [{"type": "ERROR", "object": gone}]
                deadline = time.monotonic()  # end the stream after the error

        yield b""  # send the headers now: clients wait for them before reading the stream
        for item in initial:
            yield item
        transport = request._raw_request.transport if request._raw_request is not None else None
        epoch = self._watch_epoch
        while not self._stopping.is_set():
            if self._watch_epoch != epoch:  # restart() or drop_watches(): the connection breaks
                if transport is not None:
                    transport.abort()
                break
            changed = self._changed
            events = self._events.get(resource) or []
            # Only the events after last_rv, found by bisection: a watcher costs what it is sent.
            start = bisect.bisect_right(events, last_rv, key=lambda ev: ev.rv)
            for ev in events[start:]:
                last_rv = ev.rv
                was, now = matches(ev.namespace, ev.old), matches(ev.namespace, ev.new)
                if now:
                    yield {"type": "MODIFIED" if was else "ADDED", "object": ev.new}
                elif was:
                    yield {"type": "DELETED", "object": ev.final}
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            if transport is not None and transport.is_closing():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(remaining or 1.0, 1.0))


def rbac_grants(objects: Iterable[Mapping[str, Any]]) -> frozenset[Grant]:
    """What the ClusterRoles (everywhere) and Roles (in their namespace) among ``objects`` allow."""
    grants: set[Grant] = set()
    for obj in objects:
        if obj.get("kind") not in ("ClusterRole", "Role"):
            continue
        namespace = obj["metadata"].get("namespace") if obj["kind"] == "Role" else None
        for rule in obj.get("rules") or []:
            for group in rule.get("apiGroups") or []:
                for resource in rule.get("resources") or []:
                    grants.update((namespace, group, resource, verb) for verb in rule.get("verbs") or [])
    return frozenset(grants)


def _verb(request: kmock.Request) -> str:
    """The Kubernetes verb of a request, as audit logs and RBAC name it."""
    method = request.method
    if method == kmock.method.GET:
        if request.params.get("watch") in ("true", "1"):
            return "watch"
        return "list" if request.name is None else "get"
    if method == kmock.method.DELETE:
        return "deletecollection" if request.name is None else "delete"
    return {kmock.method.POST: "create", kmock.method.PUT: "update", kmock.method.PATCH: "patch"}.get(
        method, method.value.lower()
    )


def _job_defaults(job: dict[str, Any], minor: int) -> None:
    """What the API server's Job strategy adds on create (pkg/registry/batch/job: generateSelector)."""
    spec = job.setdefault("spec", {})
    if spec.get("manualSelector"):
        return
    uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    added = {LEGACY_CONTROLLER_UID: uid, LEGACY_JOB_NAME: name}
    if minor >= JOB_LABELS_GA_MINOR:
        added |= {CONTROLLER_UID: uid, JOB_NAME: name}
    template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    template_meta["labels"] = {**added, **(template_meta.get("labels") or {})}
    selector = spec.setdefault("selector", {})
    selector.setdefault("matchLabels", {})[
        CONTROLLER_UID if minor >= JOB_LABELS_GA_MINOR else LEGACY_CONTROLLER_UID
    ] = uid


def job_pod(job: Mapping[str, Any], index: int = 0, *, minor: int = KUBERNETES_MINOR) -> dict[str, Any]:
    """The pod the Job controller creates for `job` (as the API server stored it, with its
    defaults), to be created with ``generateName`` as the controller does."""
    template = copy.deepcopy(job["spec"]["template"])
    meta = template.get("metadata") or {}
    name = job["metadata"]["name"]
    labels = dict(meta.get("labels") or {})
    annotations = dict(meta.get("annotations") or {})
    generate_name = f"{name}-"
    if job["spec"].get("completionMode") == "Indexed":
        annotations[COMPLETION_INDEX] = str(index)
        if minor >= POD_INDEX_LABEL_MINOR:
            labels[COMPLETION_INDEX] = str(index)
        generate_name = f"{name}-{index}-"
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name,
        "uid": job["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    metadata: dict[str, Any] = {"generateName": generate_name, "labels": labels, "ownerReferences": [owner]}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec") or {}}


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


# --------------------------------------------------------------------------------------------------
# Running it in a background thread.
# --------------------------------------------------------------------------------------------------


class Emulator:
    """A running :class:`TepEmulator` served over HTTP from a background thread with its own loop."""

    url: str  # "http://127.0.0.1:PORT"
    handler: TepEmulator  # the kmock handler: .objects, .resources, the reaction DSL (see .call())

    def __init__(
        self,
        *,
        record_requests: bool = False,
        namespaces: tuple[str, ...] = ("default",),
        kubernetes_minor: int = KUBERNETES_MINOR,
    ) -> None:
        self.kubernetes_minor = kubernetes_minor
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._record_requests = record_requests
        self._thread = threading.Thread(target=self._main, name="kube-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10) or self._error is not None:
            raise RuntimeError(f"the emulator did not start: {self._error!r}")
        for namespace in namespaces:
            self.create_namespace(namespace)

    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as e:
            self._error = e
            self._ready.set()

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        handler = TepEmulator(record_requests=self._record_requests, kubernetes_minor=self.kubernetes_minor)
        async with handler, kmock.Server(handler) as server:
            self.handler = handler
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            handler.stop_watches()

    def call(self, fn: Callable[[], T], timeout: float = 10) -> T:
        """Run ``fn()`` in the emulator's loop thread (safe access to handler state/DSL) and return it."""
        assert self._loop is not None

        async def _call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(_call(), self._loop).result(timeout)

    def change_unseen(
        self, resource: str, namespace: str | None, name: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Change a stored object (new resourceVersion) WITHOUT a watch event: a change the
        operator's watch missed, as after a dropped connection, which only a re-list finds.
        `resource`: "group/version/plural" ("v1/pods" for the core group)."""
        group, version, plural = (
            resource.split("/") if resource.count("/") == 2 else ("", *resource.split("/"))
        )
        key: Key = (kmock.resource(group, version, plural), namespace, name)

        def apply() -> dict[str, Any]:
            handler = self.handler
            old = handler._get(key)
            if old is None:
                raise KeyError(f"{resource} {namespace}/{name} does not exist")
            new = copy.deepcopy(old)
            change(new)
            handler._rv += 1
            new["metadata"]["resourceVersion"] = str(handler._rv)
            handler._store(key, old, new)
            return new

        return self.call(apply)

    def on_request(
        self, verb: str, plural: str, action: Callable[[], None], *, subresource: str | None = None,
        when: str = "before",
    ) -> None:  # fmt: skip
        """Run `action` (in the server's thread) once, on the next such request, "before" or
        "after" it is served; see TepEmulator.on_request."""
        self.call(lambda: self.handler.on_request(verb, plural, action, subresource=subresource, when=when))

    def clear_triggers(self) -> None:
        self.call(self.handler._triggers.clear)

    def restart(self) -> None:
        """The API server restarts: watches cut, then ``410 Gone`` for older resourceVersions."""
        self.call(self.handler.restart)

    def drop_watches(self) -> None:
        """Every watch connection drops mid-stream."""
        self.call(self.handler.drop_watches)

    def fail_requests(self, seconds: float, status: int = 503, reason: str = "ServiceUnavailable") -> None:
        """The API answers `status` to every resource request for `seconds`."""
        self.call(lambda: self.handler.fail_requests(seconds, status, reason))

    def set_latency(self, seconds: float) -> None:
        """Every resource request waits `seconds` before it is served."""

        def set_it() -> None:
            self.handler.latency = seconds

        self.call(set_it)

    def request_counts(self) -> dict[tuple[str, str], int]:
        """Requests served so far by (verb, plural), e.g. ("patch", "testplans")."""
        return self.call(lambda: dict(self.handler.request_counts))

    @property
    def server_errors(self) -> list[Exception]:
        """Unexpected server-side errors (emulator bugs or injected reaction errors); API errors
        (404, 409, 422, ... incl. kmock's own 404s for unknown URLs) are not in here."""
        return self.call(lambda: [e for e in self.handler.errors if not isinstance(e, kmock.KubernetesError)])

    def authorize(self, token: str, grants: frozenset[Grant]) -> None:
        """From now on requests with ``token`` may do only what ``grants`` allow; others get 403,
        as from the API server's RBAC authorizer (see :func:`rbac_grants`)."""
        self.handler.grants[token] = grants

    def kubeconfig(self, path: pathlib.Path, token: str | None = None) -> pathlib.Path:
        """Write a kubeconfig (server=url, insecure; the bearer ``token`` if given) to ``path``."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "emulator",
            "preferences": {},
            "clusters": [
                {"name": "emulator", "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}
            ],
            "users": [{"name": "emulator", "user": {"token": token} if token else {}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": "default"},
                }
            ],
        }
        path = pathlib.Path(path)
        path.write_text(yaml.safe_dump(config))
        return path

    def api_client(self) -> kubernetes.client.ApiClient:
        """A fresh ``kubernetes`` client configured for this emulator (no global config touched)."""
        configuration = kubernetes.client.Configuration()
        configuration.host = self.url
        configuration.verify_ssl = False
        return kubernetes.client.ApiClient(configuration)

    def create_namespace(self, name: str) -> dict[str, Any]:
        """Create a namespace (idempotent) and return it."""
        api = kubernetes.client.CoreV1Api(self.api_client())
        try:
            return api.create_namespace({"metadata": {"name": name}}).to_dict()
        except kubernetes.client.ApiException as e:
            if e.status != 409:
                raise
            return api.read_namespace(name).to_dict()

    def stop(self) -> None:
        """Stop the server (ends all watch streams) and join its thread. Idempotent."""
        if self._thread.is_alive() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("the emulator thread did not stop in 10 s")

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(
    *,
    record_requests: bool = False,
    namespaces: tuple[str, ...] = ("default",),
    kubernetes_minor: int = KUBERNETES_MINOR,
) -> Emulator:
    """Start an emulator in a background thread; the caller must ``.stop()`` it (or use ``with``)."""
    return Emulator(record_requests=record_requests, namespaces=namespaces, kubernetes_minor=kubernetes_minor)


@contextlib.contextmanager
def running_emulator(
    *, record_requests: bool = False, namespaces: tuple[str, ...] = ("default",)
) -> Iterator[Emulator]:
    """``with running_emulator() as kube: ...`` -- start an emulator and stop it on exit."""
    emulator = start_emulator(record_requests=record_requests, namespaces=namespaces)
    try:
        yield emulator
    finally:
        emulator.stop()


def wait_for(
    predicate: Callable[[], T], *, timeout: float = 10, interval: float = 0.05, message: str = ""
) -> T:
    """
    Poll ``predicate()`` until it returns a truthy value, and return that value.

    A ``kubernetes`` ``ApiException`` 404 counts as "not yet" (the object is not there yet).
    On timeout, raise ``AssertionError`` with ``message`` and the last value (or exception).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except kubernetes.client.ApiException as e:
            if e.status != 404:
                raise
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message or 'condition not met'} (after {timeout}s; last value: {last!r})")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------------
# kopf in a thread.
# --------------------------------------------------------------------------------------------------


def snappy_settings(settings: Any) -> None:
    """kopf settings for tests: fast startup/shutdown, no cluster scanning, no peering."""
    settings.scanning.disabled = True  # no CRD/namespace scanning: the resources are known
    settings.peering.standalone = True
    settings.watching.server_timeout = 30  # timeoutSeconds of watch requests
    settings.watching.client_timeout = 40
    settings.watching.reconnect_backoff = 0.1
    settings.queueing.idle_timeout = 1.0  # per-object workers exit sooner when idle
    settings.queueing.exit_timeout = 1.0  # how long to wait for the workers at shutdown
    settings.networking.request_timeout = 30
    settings.networking.error_backoffs = [0.1, 0.2, 0.5, 1]
    settings.posting.level = logging.INFO


@dataclasses.dataclass
class KopfThread:
    """A handle to kopf running in its own thread (see :func:`run_kopf_in_thread`)."""

    thread: threading.Thread
    stop_flag: threading.Event
    ready_flag: threading.Event
    startup_seconds: float = 0.0
    shutdown_seconds: float = 0.0
    error: BaseException | None = None


def _point_login_at(registry: Any, url: str) -> None:
    """Register (once per registry) a login handler that connects kopf to ``url`` (the latest one)."""
    import kopf

    holder: dict[str, str] | None = getattr(registry, "_tep_emulator_login", None)
    if holder is None:
        holder = {}

        @kopf.on.login(registry=registry, id="tep-emulator-login")
        def login_to_emulator(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=holder["url"], insecure=True, priority=100)

        registry._tep_emulator_login = holder
    holder["url"] = url


@contextlib.contextmanager
def run_kopf_in_thread(
    registry: Any,
    *,
    url: str,
    settings_fn: Callable[[Any], None] | None = None,
    namespaces: list[str] | None = None,
    memo: Any = None,
    timeout: float = 10,
) -> Iterator[KopfThread]:
    """
    Run ``kopf.operator()`` in its own thread with its own event loop while the block runs.

    - ``standalone=True`` (no peering); clusterwide when ``namespaces`` is None.
    - Login: a login handler (id ``tep-emulator-login``) returning
      ``kopf.ConnectionInfo(server=url, insecure=True, priority=100)`` is added to the registry once
      (later runs re-point it at the new ``url``; so one registry can serve many tests in sequence,
      but not two emulators at the same time).  If the registry has login handlers of its own, kopf
      calls them too: the highest priority wins, but they must not fail (e.g. point ``KUBECONFIG`` at
      :meth:`Emulator.kubeconfig` for ``kopf.login_via_client``).
    - Settings: :func:`snappy_settings`, then ``settings_fn(settings)`` for the caller's tweaks.
    - Waits for kopf's ``ready_flag`` on enter; on exit sets ``stop_flag`` and joins the thread,
      then re-raises any exception kopf ended with.  Wait for effects with :func:`wait_for`.
    """
    import kopf

    _point_login_at(registry, url)
    stop_flag = threading.Event()
    ready_flag = threading.Event()
    handle = KopfThread(thread=threading.Thread(), stop_flag=stop_flag, ready_flag=ready_flag)

    def main() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            settings = kopf.OperatorSettings()
            snappy_settings(settings)
            if settings_fn is not None:
                settings_fn(settings)
            loop.run_until_complete(
                kopf.operator(
                    registry=registry,
                    settings=settings,
                    memo=memo,
                    standalone=True,
                    clusterwide=namespaces is None,
                    namespaces=namespaces or (),
                    stop_flag=stop_flag,
                    ready_flag=ready_flag,
                )
            )
        except BaseException as e:
            handle.error = e
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    handle.thread = threading.Thread(target=main, name="kopf-operator", daemon=True)
    started = time.monotonic()
    handle.thread.start()
    wait_for(
        lambda: ready_flag.is_set() or not handle.thread.is_alive(),
        timeout=timeout,
        message="kopf did not become ready",
    )
    if not ready_flag.is_set():
        raise RuntimeError(f"kopf exited during startup: {handle.error!r}") from handle.error
    handle.startup_seconds = time.monotonic() - started
    try:
        yield handle
    finally:
        stopping = time.monotonic()
        stop_flag.set()
        handle.thread.join(timeout=timeout)
        handle.shutdown_seconds = time.monotonic() - stopping
        if handle.thread.is_alive():
            raise RuntimeError(f"kopf did not stop in {timeout}s")
        if handle.error is not None:
            raise handle.error
