"""The real operator against a real HTTP Kubernetes API: a TestPlan becomes a CronJob, and
follows every edit; bad edits lose nothing; hand edits and deletions are taken back."""

import pathlib

from tests.emulator import Emulator, wait_for
from tests.integration.harness import Cluster, OperatorThread, make_plan


def by_type(status: dict) -> dict:
    return {c["type"]: c for c in status.get("conditions") or []}


def test_apply_a_plan_and_see_its_cronjob_and_status(cluster: Cluster, operator: OperatorThread) -> None:
    created = cluster.create_plan(make_plan(timeZone="Asia/Shanghai", crontab="0 9 * * 1-5"))
    cronjob = wait_for(lambda: cluster.cronjob(), message="the CronJob never appeared")
    assert cronjob["spec"]["schedule"] == "0 9 * * 1-5"
    assert cronjob["spec"]["timeZone"] == "Asia/Shanghai"
    assert cronjob["spec"]["suspend"] is False
    assert cronjob["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "tep-operator",
        "tep.dev/plan": "smoke",
    }
    (owner,) = cronjob["metadata"]["ownerReferences"]
    assert owner["uid"] == created["metadata"]["uid"] and owner["kind"] == "TestPlan"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["containers"][0]["image"] == "tep-runner:test"

    status = cluster.wait_status(lambda s: s.get("phase") == "Scheduled", message="never Scheduled")
    assert status["observedGeneration"] == cluster.plan()["metadata"]["generation"]
    assert status["cronJobName"] == "smoke"
    assert status["nextRunTime"].endswith(":00:00Z") and status["nextRunTime"][11:13] == "01"  # 09:00 +08:00
    assert by_type(status)["Valid"]["status"] == "True" and by_type(status)["Ready"]["status"] == "True"
    wait_for(lambda: cluster.events(reason="CronJobApplied"), message="no CronJobApplied Event")


def test_flip_enabled_suspends_and_resumes(cluster: Cluster, operator: OperatorThread) -> None:
    cluster.create_plan(make_plan())
    wait_for(lambda: cluster.status().get("phase") == "Scheduled")
    cluster.patch_plan({"spec": {"enabled": False}})
    wait_for(lambda: cluster.cronjob()["spec"]["suspend"] is True, message="the CronJob was not suspended")
    status = cluster.wait_status(lambda s: s.get("phase") == "Suspended")
    assert status.get("nextRunTime") is None
    cluster.patch_plan({"spec": {"enabled": True}})
    wait_for(lambda: cluster.cronjob()["spec"]["suspend"] is False, message="the CronJob was not resumed")
    cluster.wait_status(lambda s: s.get("phase") == "Scheduled" and s.get("nextRunTime"))


def test_change_the_crontab(cluster: Cluster, operator: OperatorThread) -> None:
    cluster.create_plan(make_plan(crontab="*/30 * * * *"))
    before = cluster.wait_status(lambda s: s.get("phase") == "Scheduled")
    cluster.patch_plan({"spec": {"crontab": "15 3 1 1 *"}})
    wait_for(
        lambda: cluster.cronjob()["spec"]["schedule"] == "15 3 1 1 *", message="the schedule did not follow"
    )
    after = cluster.wait_status(lambda s: s.get("nextRunTime", "").endswith("T03:15:00Z"))
    assert after["nextRunTime"] != before["nextRunTime"]
    assert after["observedGeneration"] == before["observedGeneration"] + 1


def test_a_broken_crontab_is_invalid_and_the_old_cronjob_stays(
    cluster: Cluster, operator: OperatorThread
) -> None:
    cluster.create_plan(make_plan(crontab="*/30 * * * *"))
    cluster.wait_status(lambda s: s.get("phase") == "Scheduled")
    good = cluster.cronjob()

    cluster.patch_plan({"spec": {"crontab": "0 */5 * * * *"}})  # a seconds field
    status = cluster.wait_status(lambda s: s.get("phase") == "Invalid", message="never Invalid")
    valid = by_type(status)["Valid"]
    assert valid["status"] == "False" and valid["reason"] == "InvalidCrontab"
    assert valid["message"].startswith("spec.crontab: '0 */5 * * * *' has 6 fields")
    assert by_type(status)["Ready"]["reason"] == "LastValidCronJobKept"
    assert status["observedGeneration"] == cluster.plan()["metadata"]["generation"]
    (event,) = wait_for(lambda: cluster.events(reason="InvalidCrontab"), message="no Warning Event")
    assert event.type == "Warning" and "spec.crontab" in event.message
    assert event.involved_object.name == "smoke" and event.involved_object.kind == "TestPlan"
    kept = cluster.cronjob()
    assert kept["spec"] == good["spec"]
    assert kept["metadata"]["resourceVersion"] == good["metadata"]["resourceVersion"]

    cluster.patch_plan({"spec": {"crontab": "0 6 * * *"}})
    cluster.wait_status(lambda s: s.get("phase") == "Scheduled", message="a fixed plan never recovered")
    assert cluster.cronjob()["spec"]["schedule"] == "0 6 * * *"
    assert len(cluster.events(reason="InvalidCrontab")) == 1  # one Event per problem, not per resync


def test_invalid_from_the_start_makes_no_cronjob(cluster: Cluster, operator: OperatorThread) -> None:
    cluster.create_plan(make_plan(timeZone="Mars/Olympus", source={}))
    status = cluster.wait_status(lambda s: s.get("phase") == "Invalid")
    message = by_type(status)["Valid"]["message"]
    assert "spec.timeZone: 'Mars/Olympus' is not a known IANA time zone" in message
    assert "spec.source: set exactly one of configMap, git, image" in message
    assert by_type(status)["Ready"]["status"] == "False"
    assert cluster.cronjobs() == []


def test_a_deleted_cronjob_is_restored(cluster: Cluster, operator: OperatorThread) -> None:
    cluster.create_plan(make_plan())
    first = wait_for(lambda: cluster.cronjob())
    cluster.batch.delete_namespaced_cron_job("smoke", "qa")
    restored = wait_for(
        lambda: (lambda c: c if c["metadata"]["uid"] != first["metadata"]["uid"] else None)(
            cluster.cronjob()
        ),
        message="the deleted CronJob was not restored",
    )
    assert restored["spec"]["schedule"] == first["spec"]["schedule"]


def test_a_hand_edited_cronjob_is_taken_back(cluster: Cluster, operator: OperatorThread) -> None:
    cluster.create_plan(make_plan())
    wait_for(lambda: cluster.cronjob())
    cluster.batch.patch_namespaced_cron_job(
        "smoke",
        "qa",
        {"spec": {"suspend": True, "schedule": "* * * * *"}, "metadata": {"labels": {"extra": "x"}}},
    )
    wait_for(
        lambda: (
            cluster.cronjob()["spec"]["suspend"] is False
            and cluster.cronjob()["spec"]["schedule"] == "*/30 * * * *"
        ),
        message="the hand edit was not undone",
    )
    assert cluster.cronjob()["metadata"]["labels"]["extra"] == "x"  # other managers' fields are left alone


def test_restart_duplicates_nothing(kube: Emulator, cluster: Cluster, tmp_path: pathlib.Path) -> None:
    with OperatorThread(kube, tmp_path):
        cluster.create_plan(make_plan())
        cluster.wait_status(lambda s: s.get("phase") == "Scheduled")
        wait_for(lambda: cluster.events(reason="CronJobApplied"))
    before = cluster.cronjob()
    status_before = cluster.status()
    with OperatorThread(kube, tmp_path):
        # the new operator lists the plan first (one event per object, in order), then the edit
        cluster.patch_plan({"spec": {"crontab": "0 1 * * *"}})
        wait_for(lambda: cluster.cronjob()["spec"]["schedule"] == "0 1 * * *")
        wait_for(lambda: len(cluster.events(reason="CronJobApplied")) >= 2, message="no Event for the edit")
    assert len(cluster.cronjobs()) == 1
    assert cluster.cronjob()["metadata"]["uid"] == before["metadata"]["uid"]
    assert (
        cluster.status()["conditions"][0]["lastTransitionTime"]
        == status_before["conditions"][0]["lastTransitionTime"]
    )
    # one CronJobApplied for the create, one for the crontab change; none for the restart
    assert len(cluster.events(reason="CronJobApplied")) == 2
    # kopf kept no state of its own on the plan: observedGeneration is the only bookmark
    assert not any(key.startswith("kopf") for key in cluster.plan()["metadata"].get("annotations") or {})


def test_a_253_character_name(cluster: Cluster, operator: OperatorThread) -> None:
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(name) == 253
    cluster.create_plan(make_plan(name=name))
    status = cluster.wait_status(lambda s: s.get("phase") == "Scheduled", name=name)
    (cronjob,) = cluster.cronjobs()
    assert cronjob["metadata"]["name"] == status["cronJobName"]
    assert len(cronjob["metadata"]["name"]) <= 52
    assert len(cronjob["metadata"]["labels"]["tep.dev/plan"]) <= 63
    assert cronjob["metadata"]["annotations"]["tep.dev/plan-name"] == name


def test_deleting_the_plan_deletes_its_cronjob(cluster: Cluster, operator: OperatorThread) -> None:
    cluster.create_plan(make_plan())
    wait_for(lambda: cluster.cronjob())
    cluster.custom.delete_namespaced_custom_object("tep.dev", "v1alpha1", "qa", "testplans", "smoke")
    wait_for(lambda: cluster.cronjobs() == [], message="the CronJob outlived its plan")
    assert cluster.cronjobs() == []  # and the operator did not bring it back


def test_two_namespaces_and_a_watch_list(kube: Emulator, cluster: Cluster, tmp_path: pathlib.Path) -> None:
    kube.create_namespace("other")
    with OperatorThread(kube, tmp_path, namespaces=("qa",)):
        cluster.create_plan(make_plan(namespace="other"))
        cluster.create_plan(make_plan(namespace="qa"))
        wait_for(lambda: cluster.cronjobs("qa"))
        assert cluster.cronjobs("other") == []  # not a namespace it watches
        assert cluster.status(namespace="other") == {}


def test_resync_refreshes_the_schedule_without_a_finalizer(
    kube: Emulator, cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with OperatorThread(kube, tmp_path, resync_seconds=0.3):
        cluster.create_plan(make_plan())
        fresh = cluster.wait_status(lambda s: s.get("phase") == "Scheduled")["nextRunTime"]
        # as if the schedule time passed, and a hand edit of the CronJob the watch missed: no
        # event tells the operator, only its periodic resync can put them right
        kube.change_unseen(
            "tep.dev/v1alpha1/testplans",
            "qa",
            "smoke",
            lambda plan: plan["status"].update(nextRunTime="2020-01-01T00:00:00Z"),
        )
        kube.change_unseen(
            "batch/v1/cronjobs", "qa", "smoke", lambda c: c["spec"].update(schedule="* * * * *")
        )
        cluster.wait_status(lambda s: s.get("nextRunTime") == fresh, message="the resync did not refresh it")
        wait_for(
            lambda: cluster.cronjob()["spec"]["schedule"] == "*/30 * * * *", message="CronJob not repaired"
        )
        assert not cluster.plan()["metadata"].get("finalizers")  # deleting a plan never waits for us
