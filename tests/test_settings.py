"""The environment contract: names, defaults, one-line errors, secrets never shown, and
no command but ``dev`` starting without the real credentials it needs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import ConfigError, load_settings
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]

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
    assert settings.secret("slack_bot_token") == "xoxb-real-token-value"
    assert settings.secret("slack_signing_secret") == "signing-secret-value"
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


def test_defaults_hold_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*CREDENTIALS, "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.slack_bot_token is None
    assert settings.slack_signing_secret is None
    assert settings.huaweicloud_sdk_ak is None
    assert settings.huaweicloud_sdk_project_id is None
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


# -- what each command needs ------------------------------------------------------------------

CREDENTIALS = {
    "SLACK_BOT_TOKEN": "xoxb-real-token-value",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
    "HUAWEICLOUD_SDK_AK": "AKVALUE",
    "HUAWEICLOUD_SDK_SK": "SKVALUESECRET",
    "HUAWEICLOUD_SDK_PROJECT_ID": "0123456789abcdef0123456789abcdef",
}
IAM = {
    "VOICEBOT_IAM_USER": "robot",
    "VOICEBOT_IAM_PASSWORD": "iam-password-value",
    "VOICEBOT_IAM_DOMAIN": "example-domain",
}
SECRET_VALUES = (
    "xoxb-real-token-value",
    "signing-secret-value",
    "SKVALUESECRET",
    "iam-password-value",
    "xapp-app-token-value",
)
START_DEADLINE = 30.0


def run_bot(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m bot <command>`` with only ``env`` (and PATH) set; a command that keeps
    running past the deadline is stopped and reported as having started."""
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "bot", command],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=START_DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"`{command}` started and kept running; stderr:\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def refused(result: subprocess.CompletedProcess[str], command: str, name: str) -> str:
    """The one line a refusal prints; checks it names ``name`` and shows no secret."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"voicebot: missing setting {name}: `python -m bot {command}` needs it"
    ), lines[0]
    for secret in SECRET_VALUES:
        assert secret not in result.stdout + result.stderr
    return lines[0]


def test_check_config_on_an_empty_environment_fails() -> None:
    result = run_bot("check-config", {})
    refused(result, "check-config", "SLACK_SIGNING_SECRET")
    assert "settings OK" not in result.stdout


@pytest.mark.parametrize("command", ["serve", "socket", "worker"])
def test_no_command_but_dev_starts_on_an_empty_environment(command: str) -> None:
    first = "SLACK_BOT_TOKEN" if command == "worker" else "SLACK_SIGNING_SECRET"
    refused(run_bot(command, {"PORT": str(free_port())}), command, first)


@pytest.mark.parametrize(
    ("command", "unset", "named"),
    [
        ("serve", ("SLACK_SIGNING_SECRET",), "SLACK_SIGNING_SECRET"),
        ("serve", ("SLACK_BOT_TOKEN",), "SLACK_BOT_TOKEN"),
        ("serve", ("HUAWEICLOUD_SDK_PROJECT_ID",), "HUAWEICLOUD_SDK_PROJECT_ID"),
        ("socket", ("SLACK_APP_TOKEN",), "SLACK_APP_TOKEN"),
        ("socket", ("SLACK_SIGNING_SECRET",), "SLACK_SIGNING_SECRET"),
        ("worker", ("SLACK_BOT_TOKEN",), "SLACK_BOT_TOKEN"),
        ("worker", ("HUAWEICLOUD_SDK_SK",), "HUAWEICLOUD_SDK_SK"),
        ("worker", ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"), "HUAWEICLOUD_SDK_AK"),
        ("worker", ("HUAWEICLOUD_SDK_PROJECT_ID",), "HUAWEICLOUD_SDK_PROJECT_ID"),
        ("check-config", ("HUAWEICLOUD_SDK_AK",), "HUAWEICLOUD_SDK_AK"),
    ],
)
def test_a_command_refuses_to_start_without_a_setting_it_needs(
    command: str, unset: tuple[str, ...], named: str, redis_url: str
) -> None:
    port = free_port()
    env = {
        **CREDENTIALS,
        "SLACK_APP_TOKEN": "xapp-app-token-value",
        "REDIS_URL": redis_url,
        "PORT": str(port),
    }
    for name in unset:
        env[name] = ""  # set but empty is as good as unset
    line = refused(run_bot(command, env), command, named)
    if named.startswith("HUAWEICLOUD_SDK_A"):
        assert "VOICEBOT_IAM_USER" in line, "says what else would do"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "nothing listens"


def test_incomplete_iam_settings_name_the_missing_one() -> None:
    env = {
        name: CREDENTIALS[name]
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "HUAWEICLOUD_SDK_PROJECT_ID")
    }
    env["VOICEBOT_IAM_USER"] = IAM["VOICEBOT_IAM_USER"]
    refused(run_bot("check-config", env), "check-config", "VOICEBOT_IAM_PASSWORD")


@pytest.mark.parametrize(
    "env",
    [
        CREDENTIALS,
        {
            **{k: v for k, v in CREDENTIALS.items() if "_SDK_" not in k},
            "HUAWEICLOUD_SDK_PROJECT_ID": "0123456789abcdef0123456789abcdef",
            **IAM,
        },
    ],
    ids=["ak-sk", "iam-user"],
)
def test_check_config_passes_with_the_real_settings(env: dict[str, str]) -> None:
    result = run_bot("check-config", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "settings OK"
