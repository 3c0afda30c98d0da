from datetime import UTC, datetime

from tep_runner.runid import job_minutes, run_id_for, run_id_time

NOW = datetime(2026, 11, 21, 19, 42, 7, tzinfo=UTC)


def test_explicit_run_id_wins():
    assert (
        run_id_for("20261121T194200Z-m3f9a1c2d", "smoke-29012345", NOW, "abcd")
        == "20261121T194200Z-m3f9a1c2d"
    )


def test_cronjob_job_name_gives_the_scheduled_minute():
    minutes = int(datetime(2026, 11, 21, 19, 42, tzinfo=UTC).timestamp()) // 60
    assert run_id_for("", f"smoke-{minutes}", NOW, "abcd") == f"20261121T194200Z-{minutes}"
    # The same for every shard, whatever its own clock says.
    assert (
        run_id_for("", f"smoke-{minutes}", datetime(2030, 1, 1, tzinfo=UTC), "ffff")
        == f"20261121T194200Z-{minutes}"
    )


def test_without_a_numeric_suffix_the_start_time_and_a_token():
    assert run_id_for("", "smoke-manual-x7", NOW, "abcd") == "20261121T194207Z-abcd"
    assert run_id_for("", "", NOW, "abcd") == "20261121T194207Z-abcd"
    assert job_minutes("smoke-manual-x7") is None


def test_run_id_time():
    assert run_id_time("20261121T194200Z-29012345") == datetime(2026, 11, 21, 19, 42, tzinfo=UTC)
    assert run_id_time("not-a-run") is None
