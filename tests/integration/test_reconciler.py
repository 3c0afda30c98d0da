"""The reconciler's decisions, called directly (no kopf) with the real client against the
emulator: the periodic resync and the status writes' retry on a 409 Conflict.

The resync exists for what no watch event announces (a change the operator's watch missed,
time passing); `Emulator.change_unseen` makes such changes, so what these tests see repaired
was repaired by `Reconciler.resync_all`, not by an event.
"""

import dataclasses
import logging
import pathlib
from collections.abc import Mapping
from typing import Any

import kopf
import pytest

from tep_operator import names, reconciler
from tep_operator.client import Kube
from tep_operator.connection import load as load_connection
from tep_operator.reconciler import Reconciler
from tests.emulator import Emulator
from tests.integration.harness import TEST_CONFIG, Cluster, make_plan
from tests.messages import runner_message as summary


@pytest.fixture()
def kube_client(kube: Emulator, tmp_path: pathlib.Path) -> Kube:
    return Kube(load_connection(str(kube.kubeconfig(tmp_path / "kubeconfig"))))


@pytest.fixture()
def resync(kube_client: Kube) -> Reconciler:
    return Reconciler(TEST_CONFIG, kube_client)


def test_resync_creates_the_cronjob_and_the_status(cluster: Cluster, resync: Reconciler) -> None:
    cluster.create_plan(make_plan())
    resync.resync_all()
    assert cluster.cronjob()["spec"]["schedule"] == "*/30 * * * *"
    status = cluster.status()
    assert status["phase"] == "Scheduled" and status["observedGeneration"] == 1
    assert status["cronJobName"] == "smoke"


def test_resync_repairs_a_cronjob_changed_without_an_event(
    kube: Emulator, cluster: Cluster, resync: Reconciler
) -> None:
    cluster.create_plan(make_plan())
    resync.resync_all()

    def hand_edit(cronjob: dict[str, Any]) -> None:
        cronjob["spec"]["schedule"] = "* * * * *"
        cronjob["spec"]["suspend"] = True

    kube.change_unseen("batch/v1/cronjobs", "qa", "smoke", hand_edit)
    assert cluster.cronjob()["spec"]["schedule"] == "* * * * *"
    resync.resync_all()
    cronjob = cluster.cronjob()
    assert (cronjob["spec"]["schedule"], cronjob["spec"]["suspend"]) == ("*/30 * * * *", False)


def test_resync_moves_next_run_time_on(kube: Emulator, cluster: Cluster, resync: Reconciler) -> None:
    cluster.create_plan(make_plan())
    resync.resync_all()
    fresh = cluster.status()["nextRunTime"]
    kube.change_unseen(
        "tep.dev/v1alpha1/testplans",
        "qa",
        "smoke",
        lambda p: p["status"].update(nextRunTime="2020-01-01T00:00:00Z"),
    )
    resync.resync_all()
    assert cluster.status()["nextRunTime"] == fresh


def test_resync_only_in_the_watched_namespaces(cluster: Cluster, kube_client: Kube) -> None:
    cluster.create_plan(make_plan(namespace="qa"))
    cluster.create_plan(make_plan(namespace="default"))
    Reconciler(dataclasses.replace(TEST_CONFIG, namespaces=("qa",)), kube_client).resync_all()
    assert [c["metadata"]["name"] for c in cluster.cronjobs("qa")] == ["smoke"]
    assert cluster.cronjobs("default") == []


def test_resync_starts_a_queued_request_after_the_active_run(
    kube: Emulator, cluster: Cluster, resync: Reconciler
) -> None:
    cluster.create_plan(make_plan())
    resync.resync_all()
    cluster.start_job("smoke-29012345")
    cluster.request_run("queued")
    resync.resync_all()  # a run is active (concurrencyPolicy Forbid): the request waits
    assert cluster.status()["pendingRunRequest"] == "queued"
    assert cluster.jobs(**{names.LABEL_TRIGGER: names.TRIGGER_MANUAL}) == []
    cluster.finish_pod("smoke-29012345", message=summary())
    # the Job's end reached nobody (no operator ran): only the resync can start the request
    cluster.finish_job("smoke-29012345")
    resync.resync_all()
    (manual,) = cluster.jobs(**{names.LABEL_TRIGGER: names.TRIGGER_MANUAL})
    assert manual["metadata"]["name"] == names.manual_job_name("smoke", "queued")
    status = cluster.status()
    assert status["lastRunRequest"] == "queued" and status.get("pendingRunRequest") is None
    resync.resync_all()  # and never twice
    assert len(cluster.jobs(**{names.LABEL_TRIGGER: names.TRIGGER_MANUAL})) == 1


def test_resync_goes_on_after_a_plan_it_cannot_handle(
    cluster: Cluster, resync: Reconciler, kube: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    cluster.create_plan(make_plan(name="broken"))
    cluster.create_plan(make_plan(name="fine"))
    # the API server refuses every write to the broken plan's CronJob
    kube.call(lambda: kube.handler["patch /apis/batch/v1/namespaces/qa/cronjobs/broken"] << 500)
    with caplog.at_level(logging.ERROR, logger="tep_operator.resync"):
        resync.resync_all()
    assert [c["metadata"]["name"] for c in cluster.cronjobs()] == ["fine"]
    assert any("Resync of qa/broken failed" in r.getMessage() for r in caplog.records), caplog.text


def test_update_status_retries_on_a_conflict(cluster: Cluster, kube_client: Kube) -> None:
    cluster.create_plan(make_plan())
    stale = cluster.plan()
    # another writer (a Job event, the resync) changes the plan after `stale` was read
    cluster.custom.patch_namespaced_custom_object_status(
        "tep.dev",
        "v1alpha1",
        "qa",
        "testplans",
        "smoke",
        {"status": {"lastScheduleTime": "2026-11-21T19:30:00Z"}},
    )
    seen: list[str] = []

    def compute(fresh: Mapping[str, Any]) -> dict[str, Any]:
        seen.append(fresh["metadata"]["resourceVersion"])
        return {"phase": "Scheduled"}

    written = reconciler.update_status(kube_client, stale, compute)
    assert written is not None
    # the API server answered 409 to the stale resourceVersion; the patch was recomputed
    # from a fresh read and sent again, and neither write is lost
    assert seen == [stale["metadata"]["resourceVersion"], written[0]["metadata"]["resourceVersion"]]
    assert seen[0] != seen[1]
    status = cluster.status()
    assert status["phase"] == "Scheduled" and status["lastScheduleTime"] == "2026-11-21T19:30:00Z"


def test_update_status_gives_up_for_now_when_it_keeps_conflicting(
    cluster: Cluster, kube_client: Kube
) -> None:
    cluster.create_plan(make_plan())
    attempts = 0

    def compute(fresh: Mapping[str, Any]) -> dict[str, Any]:
        nonlocal attempts
        attempts += 1
        cluster.patch_plan({"metadata": {"labels": {"writer": str(attempts)}}})  # always one step ahead
        return {"phase": "Scheduled"}

    with pytest.raises(kopf.TemporaryError):
        reconciler.update_status(kube_client, cluster.plan(), compute)
    assert attempts == reconciler.CONFLICT_RETRIES
    assert "phase" not in cluster.status()


def test_update_status_of_a_deleted_plan_writes_nothing(cluster: Cluster, kube_client: Kube) -> None:
    cluster.create_plan(make_plan())
    stale = cluster.plan()
    cluster.custom.delete_namespaced_custom_object("tep.dev", "v1alpha1", "qa", "testplans", "smoke")
    assert reconciler.update_status(kube_client, stale, lambda fresh: {"phase": "Scheduled"}) is None


def test_only_the_plan_as_its_reconcile_wrote_it_counts_as_its_own_write(
    cluster: Cluster, resync: Reconciler
) -> None:
    """The event of a reconcile's own status write is not reconciled again; any other change is."""
    cluster.create_plan(make_plan())
    resync.resync_all()
    written = cluster.plan()
    assert written["status"]["phase"] == "Scheduled"
    assert resync.own_status_write(written)
    cluster.request_run("2026-12-02T01:00:00Z")  # a change by somebody else, after our write
    assert not resync.own_status_write(cluster.plan())
    assert not resync.own_status_write(make_plan(name="other"))
