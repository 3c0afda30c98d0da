"""Every outcome the runner reports: passed, failed, skipped and flaky (run it with --reruns 1)."""

import itertools

import pytest

# pytest-rerunfailures reruns a test at once in the same process, so a module-level counter sees both
# attempts; every new run starts from zero, which makes the flakiness deterministic.
_attempts = itertools.count()


def test_addition():
    assert 1 + 1 == 2


def test_string_upper():
    assert "tep".upper() == "TEP"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_square_is_positive(n):
    assert n * n > 0


def test_wrong_total():
    assert sum([1, 2, 3]) == 7, "a deliberate failure"


@pytest.mark.skip(reason="shows a skipped test")
def test_not_ready():
    raise AssertionError("never runs")


def test_flaky_first_attempt():
    assert next(_attempts) > 0, "fails on the first attempt only"
