"""
Probes of the test Kubernetes API (tests/emulator.py): one small test per gap of raw kmock 0.8.

Each of these would fail against a raw ``kmock.KubernetesEmulator``.
"""

import json
import pathlib
import threading

import kopf
import kubernetes
import kubernetes.watch
import pytest
import yaml
from kubernetes.client import ApiException

from tests.emulator import Emulator, job_pod, rbac_grants, run_kopf_in_thread, wait_for

GROUP, VERSION, PLURAL = "tep.dev", "v1alpha1", "testplans"

ROOT = pathlib.Path(__file__).resolve().parents[2]


def plan_body(name: str, **spec: object) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TestPlan",
        "metadata": {"name": name},
        "spec": spec or {"schedule": "*/5 * * * *"},
    }


def cronjob(name: str, **meta: object) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, **meta},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Never"}
                    }
                }
            },
        },
    }


@pytest.fixture()
def custom(kube: Emulator) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kube.api_client())


@pytest.fixture()
def core(kube: Emulator) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kube.api_client())


@pytest.fixture()
def batch(kube: Emulator) -> kubernetes.client.BatchV1Api:
    return kubernetes.client.BatchV1Api(kube.api_client())


def test_metadata_is_filled(custom):
    obj = custom.create_namespaced_custom_object(GROUP, VERSION, "qa", PLURAL, plan_body("p1"))
    meta = obj["metadata"]
    assert meta["namespace"] == "qa"  # from the URL
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    rv1 = meta["resourceVersion"]

    obj = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "qa", PLURAL, "p1", {"metadata": {"labels": {"a": "b"}}}
    )
    assert obj["metadata"]["resourceVersion"] != rv1  # bumped on every write
    assert obj["metadata"]["generation"] == 1  # metadata change: no generation bump
    assert obj["metadata"]["uid"] == meta["uid"]

    obj = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "qa", PLURAL, "p1", {"spec": {"schedule": "@daily"}}
    )
    assert obj["metadata"]["generation"] == 2  # spec change: bumped


def test_status_subresource_separation(custom):
    body = plan_body("p1")
    body["status"] = {"phase": "Ignored"}
    obj = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    assert "status" not in obj  # status is dropped on create

    obj = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "p1", {"status": {"phase": "Ready"}, "spec": {"schedule": "X"}}
    )
    assert obj["status"] == {"phase": "Ready"}
    assert obj["spec"]["schedule"] == "*/5 * * * *"  # spec unchanged via /status
    assert obj["metadata"]["generation"] == 1

    obj = custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "p1",
        {"status": {"phase": "Hacked"}, "spec": {"schedule": "@daily"}},
    )
    assert obj["status"] == {"phase": "Ready"}  # status unchanged via the main resource
    assert obj["spec"]["schedule"] == "@daily"


def test_job_and_pod_status_can_be_set_directly(batch, core):
    batch.create_namespaced_job(
        "default",
        {
            "metadata": {"name": "j1"},
            "spec": {
                "template": {"spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Never"}}
            },
        },
    )
    job = batch.patch_namespaced_job_status("j1", "default", {"status": {"succeeded": 1}})
    assert job.status.succeeded == 1
    core.create_namespaced_pod(
        "default", {"metadata": {"name": "p1"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    )
    pod = core.patch_namespaced_pod_status("p1", "default", {"status": {"phase": "Succeeded"}})
    assert pod.status.phase == "Succeeded"


def test_label_selector_on_list(core):
    for name, labels in [("a", {"app": "x", "tier": "1"}), ("b", {"app": "y"}), ("c", {})]:
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})

    def names(selector: str) -> list[str]:
        return [
            cm.metadata.name
            for cm in core.list_namespaced_config_map("default", label_selector=selector).items
        ]

    assert names("app=x") == ["a"]
    assert names("app!=x") == ["b", "c"]
    assert names("app") == ["a", "b"]
    assert names("!app") == ["c"]
    assert names("app in (x,y),tier") == ["a"]
    assert names("app notin (x)") == ["b", "c"]
    assert [
        cm.metadata.name
        for cm in core.list_config_map_for_all_namespaces(field_selector="metadata.name=b").items
    ] == ["b"]


def collect_watch(kube: Emulator, events: list) -> threading.Thread:
    """Watch all testplans cluster-wide with the official client's ``Watch`` into ``events``."""
    custom = kubernetes.client.CustomObjectsApi(kube.api_client())

    def main() -> None:
        for event in kubernetes.watch.Watch().stream(
            custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            timeout_seconds=3,
            allow_watch_bookmarks=True,
        ):
            events.append(event)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread


def raw_watch(kube: Emulator, path: str, *, until: int, timeout: float = 5) -> list[dict]:
    """Read a watch stream until ``until`` events arrived (or the server-side timeout ends it)."""
    client = kube.api_client()
    response = client.rest_client.pool_manager.request(
        "GET", kube.url + path, preload_content=False, timeout=timeout
    )
    events, buffer = [], b""
    for chunk in response.stream(1024):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                events.append(json.loads(line))
        if len(events) >= until:
            break
    response.release_conn()
    return events


def test_label_selector_on_watch(kube, core):
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "a", "labels": {"app": "x"}}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "b", "labels": {"app": "y"}}})
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"app": "z"}}})  # leaves
    events = raw_watch(
        kube,
        f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"
        f"&labelSelector=app%3Dx&timeoutSeconds=1",
        until=2,
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("DELETED", "a"),
    ]


def test_generate_name_twice(core):
    body = {
        "metadata": {"generateName": "kopf-event-"},
        "reason": "R",
        "message": "m",
        "involvedObject": {"kind": "TestPlan", "name": "p", "namespace": "default"},
    }
    e1 = core.create_namespaced_event("default", body)
    e2 = core.create_namespaced_event("default", body)
    assert e1.metadata.name.startswith("kopf-event-") and len(e1.metadata.name) == len("kopf-event-") + 5
    assert e1.metadata.name != e2.metadata.name


def test_garbage_collection_of_owned_objects(custom, batch, core):
    plan = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, plan_body("p1"))
    owner = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TestPlan",
        "name": "p1",
        "uid": plan["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    cj = batch.create_namespaced_cron_job("default", cronjob("cj1", ownerReferences=[owner]))
    job_owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "cj1", "uid": cj.metadata.uid}
    batch.create_namespaced_job(
        "default",
        {
            "metadata": {"name": "j1", "ownerReferences": [job_owner]},
            "spec": {"template": {"spec": {"containers": []}}},
        },
    )
    batch.create_namespaced_cron_job("default", cronjob("unowned"))

    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "p1")
    assert [c.metadata.name for c in batch.list_namespaced_cron_job("default").items] == ["unowned"]
    assert batch.list_namespaced_job("default").items == []  # cascaded through the CronJob

    core.delete_namespace("default")  # deleting a namespace deletes its objects
    assert batch.list_cron_job_for_all_namespaces().items == []
    with pytest.raises(ApiException) as err:
        core.read_namespace("default")
    assert err.value.status == 404


def test_finalizers_keep_a_deleted_object(custom):
    body = plan_body("p1")
    body["metadata"]["finalizers"] = ["tep.dev/cleanup"]
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "p1")
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "p1")
    assert obj["metadata"]["deletionTimestamp"]
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "p1", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "p1")
    assert err.value.status == 404


def apply(kube: Emulator, body: dict) -> tuple[int, dict]:
    client = kube.api_client()
    name = body["metadata"]["name"]
    response = client.rest_client.pool_manager.request(
        "PATCH",
        f"{kube.url}/apis/batch/v1/namespaces/default/cronjobs/{name}?fieldManager=tep-operator&force=true",
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    return response.status, json.loads(response.data)


def test_server_side_apply_create_update_noop(kube):
    status, created = apply(kube, cronjob("cj1"))
    assert status == 201
    assert created["metadata"]["generation"] == 1

    changed = cronjob("cj1")
    changed["spec"]["schedule"] = "*/2 * * * *"
    status, updated = apply(kube, changed)
    assert status == 200
    assert updated["spec"]["schedule"] == "*/2 * * * *"
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    status, same = apply(kube, changed)
    assert status == 200
    assert same["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]  # no-op: no bump


def test_json_patch_test_op_and_stale_put(kube, custom):
    obj = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, plan_body("p1"))
    rv = obj["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
    ]
    client = kube.api_client()
    url = f"{kube.url}/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}/p1"
    ok = client.rest_client.pool_manager.request(
        "PATCH", url, body=json.dumps(ops).encode(), headers={"Content-Type": "application/json-patch+json"}
    )
    assert ok.status == 200 and json.loads(ok.data)["metadata"]["finalizers"] == ["x/y"]
    stale = client.rest_client.pool_manager.request(
        "PATCH", url, body=json.dumps(ops).encode(), headers={"Content-Type": "application/json-patch+json"}
    )
    assert stale.status == 422  # as a real API server; kopf expects 422 for a failed test op
    assert json.loads(stale.data)["kind"] == "Status"

    obj["spec"]["schedule"] = "@daily"  # the stale resourceVersion from the create
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "p1", obj)
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "Conflict"


def test_errors_have_kubernetes_status_shape(custom):
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "missing")
    assert err.value.status == 404 and json.loads(err.value.body)["reason"] == "NotFound"
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, plan_body("p1"))
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, plan_body("p1"))
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"


def test_watch_events_for_create_modify_delete(kube, custom):
    events: list = []
    thread = collect_watch(kube, events)
    wait_for(lambda: kube.call(lambda: len(kube.handler._inflight) >= 1), message="watch not connected")

    custom.create_namespaced_custom_object(GROUP, VERSION, "qa", PLURAL, plan_body("p1"))
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, "qa", PLURAL, "p1", {"status": {"x": 1}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, "qa", PLURAL, "p1")
    seen = wait_for(
        lambda: [(e["type"], e["object"].get("status")) for e in events] if len(events) >= 3 else None,
        message=f"watch events: {events}",
    )
    assert seen == [("ADDED", None), ("MODIFIED", {"x": 1}), ("DELETED", {"x": 1})]
    thread.join(timeout=5)
    assert not thread.is_alive()  # timeoutSeconds ended the stream


def test_discovery_of_testplans(kube):
    client = kube.api_client()
    groups = json.loads(client.rest_client.pool_manager.request("GET", kube.url + "/apis").data)
    assert "tep.dev" in [g["name"] for g in groups["groups"]]
    apis = kubernetes.client.ApisApi(client).get_api_versions()
    assert {"tep.dev", "batch", "coordination.k8s.io", "events.k8s.io"} <= {g.name for g in apis.groups}
    resources = json.loads(
        client.rest_client.pool_manager.request("GET", kube.url + f"/apis/{GROUP}/{VERSION}").data
    )
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["testplans"]["kind"] == "TestPlan" and by_name["testplans"]["namespaced"] is True
    assert by_name["testplans"]["shortNames"] == ["tp"] and "testplans/status" in by_name


def test_request_matching_stays_linear(kube, batch):
    # kmock matches each request against its whole request log, so every request costs
    # O(requests so far). The emulator keeps only the requests in flight: the log does not grow.
    # (A count, not a timing: timings are flaky on shared machines; bench/reconcile.py times it.)
    for i in range(500):
        batch.create_namespaced_cron_job("default", cronjob(f"cj-{i}"))
    assert len(batch.list_namespaced_cron_job("default").items) == 500
    assert kube.call(lambda: len(kube.handler._requests)) <= 2  # this LIST, at most one more
    # nor does the log of the reaction that served them (the emulation's own)
    assert kube.call(lambda: max(len(p._requests) for p in kube.handler._payloads)) <= 2


def test_kopf_runs_against_the_emulator(kube, custom, core):
    registry = kopf.OperatorRegistry()

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    def created(body, patch, **_):
        patch.status["phase"] = "Seen"
        kopf.info(body, reason="Hello", message="first")
        kopf.info(body, reason="Hello", message="second")

    with run_kopf_in_thread(registry, url=kube.url) as operator:
        custom.create_namespaced_custom_object(GROUP, VERSION, "qa", PLURAL, plan_body("p1"))
        wait_for(
            lambda: (
                custom.get_namespaced_custom_object(GROUP, VERSION, "qa", PLURAL, "p1")
                .get("status", {})
                .get("phase")
                == "Seen"
            ),
            message="kopf's status patch did not land",
        )
        events = wait_for(
            lambda: (
                [e for e in core.list_namespaced_event("qa").items if e.reason == "Hello"]
                if len([e for e in core.list_namespaced_event("qa").items if e.reason == "Hello"]) >= 2
                else None
            ),
            message="kopf's events were not posted",
        )
    assert len({e.metadata.name for e in events}) == 2
    assert sorted(e.message for e in events) == ["first", "second"]
    assert operator.startup_seconds < 3 and operator.shutdown_seconds < 3, operator


def job_body(name: str, **spec: object) -> dict:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": template, **spec},
    }


@pytest.mark.parametrize(
    "kube, new_labels, index_label",
    [(26, False, False), (27, True, False), (30, True, True)],
    indirect=["kube"],
)
def test_job_defaults_and_pods_per_kubernetes_version(kube, new_labels, index_label):
    """What the API server adds to a Job, and what the Job controller puts on its pods, by version
    (raw kmock adds nothing)."""
    client = kube.api_client()
    batch, core = kubernetes.client.BatchV1Api(client), kubernetes.client.CoreV1Api(client)
    batch.create_namespaced_job("default", job_body("j", completionMode="Indexed", completions=2))
    job = json.loads(batch.read_namespaced_job("j", "default", _preload_content=False).data)
    uid = job["metadata"]["uid"]
    legacy = {"controller-uid": uid, "job-name": "j"}
    new = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "j"}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "app": "x",
        **legacy,
        **(new if new_labels else {}),
    }
    selector_label = "batch.kubernetes.io/controller-uid" if new_labels else "controller-uid"
    assert job["spec"]["selector"] == {"matchLabels": {selector_label: uid}}

    created = core.create_namespaced_pod("default", job_pod(job, 1, minor=kube.kubernetes_minor))
    assert created.metadata.name.startswith("j-1-")
    index = {"batch.kubernetes.io/job-completion-index": "1"}
    assert created.metadata.labels == {
        "app": "x",
        **legacy,
        **(new if new_labels else {}),
        **(index if index_label else {}),
    }
    assert created.metadata.annotations == index
    (owner,) = created.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller, owner.block_owner_deletion) == (
        "Job",
        "j",
        uid,
        True,
        True,
    )


def test_manual_selector_job_gets_no_defaults(batch):
    selector = {"matchLabels": {"app": "x"}}
    batch.create_namespaced_job("default", job_body("m", manualSelector=True, selector=selector))
    job = json.loads(batch.read_namespaced_job("m", "default", _preload_content=False).data)
    assert job["spec"]["template"]["metadata"]["labels"] == {"app": "x"}
    assert job["spec"]["selector"] == selector


def _get_json(kube: Emulator, path: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(kube.url + path, timeout=10) as response:
        return dict(json.loads(response.read()))


def _watch_lines(kube: Emulator, path: str, seconds: int = 1) -> list[dict]:
    import urllib.request

    with urllib.request.urlopen(f"{kube.url}{path}&timeoutSeconds={seconds}", timeout=10) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def test_lists_come_in_pages_that_add_up(kube: Emulator) -> None:
    custom = kubernetes.client.CustomObjectsApi(kube.api_client())
    for i in range(7):
        custom.create_namespaced_custom_object(
            "tep.dev", "v1alpha1", "default", "testplans", plan_body(f"p{i}")
        )
    base = "/apis/tep.dev/v1alpha1/namespaces/default/testplans?limit=3"
    names, token, pages, versions = [], "", 0, set()
    while True:
        page = _get_json(kube, base + (f"&continue={token}" if token else ""))
        pages += 1
        names += [item["metadata"]["name"] for item in page["items"]]
        versions.add(page["metadata"]["resourceVersion"])
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert pages == 3 and names == [f"p{i}" for i in range(7)]
    assert len(versions) == 1, "every page carries the first page's resourceVersion"


def test_after_an_api_server_restart_an_old_resource_version_is_gone(kube: Emulator) -> None:
    custom = kubernetes.client.CustomObjectsApi(kube.api_client())
    created = custom.create_namespaced_custom_object(
        "tep.dev", "v1alpha1", "default", "testplans", plan_body("old")
    )
    since = created["metadata"]["resourceVersion"]
    custom.create_namespaced_custom_object("tep.dev", "v1alpha1", "default", "testplans", plan_body("newer"))
    path = f"/apis/tep.dev/v1alpha1/namespaces/default/testplans?watch=true&resourceVersion={since}"
    assert all(e["type"] != "ERROR" for e in _watch_lines(kube, path)), "before: the watch works"
    kube.restart()
    (event,) = _watch_lines(kube, path)
    assert event["type"] == "ERROR" and event["object"]["code"] == 410
    # a fresh list gives a resourceVersion to watch from again
    fresh = _get_json(kube, "/apis/tep.dev/v1alpha1/namespaces/default/testplans")["metadata"][
        "resourceVersion"
    ]
    again = f"/apis/tep.dev/v1alpha1/namespaces/default/testplans?watch=true&resourceVersion={fresh}"
    assert all(e["type"] != "ERROR" for e in _watch_lines(kube, again))


def test_injected_failures_spare_the_tests_own_client(kube: Emulator) -> None:
    from tests.emulator import TEST_USER_AGENT

    operator_like = kubernetes.client.CoreV1Api(kube.api_client())
    tester_api = kube.api_client()
    tester_api.user_agent = TEST_USER_AGENT
    tester = kubernetes.client.CoreV1Api(tester_api)
    kube.fail_requests(5, 429, "TooManyRequests")
    with pytest.raises(ApiException) as failed:
        operator_like.list_namespaced_pod("default")
    assert failed.value.status == 429 and failed.value.headers["Retry-After"] == "1"
    assert tester.list_namespaced_pod("default").items == []
    kube.fail_requests(0)
    before = kube.request_counts()[("list", "pods")]
    assert operator_like.list_namespaced_pod("default").items == []
    assert kube.request_counts()[("list", "pods")] == before + 1


def test_a_token_may_do_only_what_its_rbac_grants(kube: Emulator) -> None:
    """The API server's RBAC authorizer: a Role's rules in its namespace, a ClusterRole's everywhere."""
    role = {
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "qa"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }
    cluster_role = {
        "kind": "ClusterRole",
        "metadata": {"name": "c"},
        "rules": [{"apiGroups": ["batch"], "resources": ["jobs/status"], "verbs": ["patch"]}],
    }
    grants = rbac_grants([role, cluster_role, {"kind": "ConfigMap", "metadata": {"name": "x"}}])
    assert grants == {("qa", "", "pods", "list"), (None, "batch", "jobs/status", "patch")}
    kube.authorize("limited", grants)
    client = kube.api_client()
    client.configuration.api_key = {"authorization": "limited"}
    client.configuration.api_key_prefix = {"authorization": "Bearer"}
    limited = kubernetes.client.CoreV1Api(client)
    assert limited.list_namespaced_pod("qa").items == []
    for forbidden in (
        lambda: limited.list_namespaced_pod("default"),
        lambda: limited.list_namespaced_config_map("qa"),
    ):
        with pytest.raises(ApiException) as denied:
            forbidden()
        body = json.loads(denied.value.body)
        assert (denied.value.status, body["reason"]) == (403, "Forbidden")
        assert 'User "limited" cannot list resource' in body["message"]
    with pytest.raises(ApiException) as denied:
        limited.list_pod_for_all_namespaces()  # a Role's grant is not cluster-wide
    assert denied.value.status == 403 and "at the cluster scope" in json.loads(denied.value.body)["message"]
    # any other token, or none, is the tests' admin
    assert kubernetes.client.CoreV1Api(kube.api_client()).list_namespaced_config_map("qa").items == []


def test_a_new_crd_is_established_as_the_apiextensions_controllers_make_it(kube: Emulator) -> None:
    ext = kubernetes.client.ApiextensionsV1Api(kube.api_client())
    crd = yaml.safe_load((ROOT / "crds" / "testplans.tep.dev.yaml").read_text())
    crd["metadata"]["name"] = "widgets.example.com"
    crd["spec"].update(group="example.com", names={"plural": "widgets", "kind": "Widget"})
    ext.create_custom_resource_definition(crd)
    status = ext.read_custom_resource_definition("widgets.example.com").status
    conditions = {(c.type, c.status) for c in status.conditions}
    assert conditions == {("NamesAccepted", "True"), ("Established", "True")}
    assert (status.accepted_names.singular, status.accepted_names.list_kind) == ("widget", "WidgetList")
    assert status.stored_versions == [v["name"] for v in crd["spec"]["versions"] if v["storage"]]
