"""The environment contract: names, defaults, one-line errors, secrets never shown."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.settings import ConfigError, load_settings

CONTRACT = {
    "SLACK_BOT_TOKEN": "xoxb-real-token-value",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
    "SLACK_APP_TOKEN": "xapp-app-token-value",
    "SLACK_API_URL": "http://127.0.0.1:9/api",
    "REDIS_URL": "redis://127.0.0.1:6390/3",
    "HUAWEICLOUD_SDK_AK": "AKVALUE",
    "HUAWEICLOUD_SDK_SK": "SKVALUESECRET",
    "HUAWEICLOUD_SDK_PROJECT_ID": "0123456789abcdef0123456789abcdef",
    "METASTUDIO_REGION": "cn-east-3",
    "PORT": "8088",
}


def test_every_contract_name_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CONTRACT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VOICEBOT_ADMINS", "U1, U2,,U3")
    monkeypatch.setenv("VOICEBOT_REQUIRE_APPROVAL", "false")
    settings = load_settings()
    assert settings.slack_bot_token.get_secret_value() == "xoxb-real-token-value"
    assert settings.slack_signing_secret.get_secret_value() == "signing-secret-value"
    assert settings.slack_app_token is not None
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"
    assert settings.redis_url == "redis://127.0.0.1:6390/3"
    assert settings.huaweicloud_sdk_project_id == "0123456789abcdef0123456789abcdef"
    assert settings.metastudio_endpoint == "https://metastudio.cn-east-3.myhuaweicloud.com"
    assert settings.port == 8088
    assert settings.admins == ("U1", "U2", "U3")
    assert settings.require_approval is False
    assert settings.has_metastudio_credentials


def test_endpoint_override_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASTUDIO_ENDPOINT", "http://127.0.0.1:8081/")
    assert load_settings().metastudio_endpoint == "http://127.0.0.1:8081"


def test_defaults_run_locally() -> None:
    settings = load_settings()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.metastudio_region == "cn-north-4"
    assert settings.approval_ttl == 86400
    assert settings.poll_interval == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "not-a-port"),
        ("METASTUDIO_REGION", "mars-1"),
        ("VOICEBOT_APPROVAL_TTL", "-5"),
        ("VOICEBOT_ALLOW_SELF_APPROVAL", "perhaps"),
    ],
)
def test_malformed_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message
    assert "\n" not in message


def test_secrets_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CONTRACT.items():
        monkeypatch.setenv(name, value)
    shown = repr(load_settings())
    for secret in ("xoxb-real-token-value", "signing-secret-value", "SKVALUESECRET"):
        assert secret not in shown


def test_startup_error_is_one_line_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config"],
        env={"PORT": "nope", "PATH": "/usr/bin:/bin", "SLACK_SIGNING_SECRET": "hush-hush"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "voicebot: invalid setting PORT: Input should be a valid integer, "
        "unable to parse string as an integer"
    )
    assert "Traceback" not in result.stderr
    assert "hush-hush" not in result.stdout + result.stderr
