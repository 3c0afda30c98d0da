"""The operator settings of notifications: TEP_OPERATOR_REPORTS_URL and the retry window."""

import pytest

from tep_operator.config import ConfigError, config_from_env


def test_defaults() -> None:
    config = config_from_env({})
    assert (config.reports_url, config.notify_timeout_seconds, config.notify_retry_seconds) == (
        "",
        10.0,
        300.0,
    )


def test_from_the_environment() -> None:
    config = config_from_env(
        {
            "TEP_OPERATOR_REPORTS_URL": "https://reports.example.com/tep/",
            "TEP_OPERATOR_NOTIFY_TIMEOUT_SECONDS": "2.5",
            "TEP_OPERATOR_NOTIFY_RETRY_SECONDS": "30",
        }
    )
    assert (config.reports_url, config.notify_timeout_seconds, config.notify_retry_seconds) == (
        "https://reports.example.com/tep",
        2.5,
        30.0,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TEP_OPERATOR_REPORTS_URL", "reports.example.com", "must start with http:// or https://"),
        ("TEP_OPERATOR_NOTIFY_TIMEOUT_SECONDS", "soon", "is not a number"),
        ("TEP_OPERATOR_NOTIFY_RETRY_SECONDS", "0", "must be more than 0"),
    ],
)
def test_bad_settings_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        config_from_env({name: value})
    assert message in str(info.value)
