"""Sentinel settings: ``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER`` are read, checked for
form, and ``check-config`` asks the sentinels themselves whether they answer and know the
primary's name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.redis_ha import RedisTarget
from bot.settings import ConfigError, load_settings
from sandbox.redis_sentinel import SentinelGroup
from tests.conftest import free_port
from tests.test_settings import CREDENTIALS, refused, run_bot


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    group = SentinelGroup.start(tmp_path_factory.mktemp("redis"), replicas=0)
    yield group
    group.stop()


def test_sentinels_are_read_as_host_port_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", "10.0.0.1:26379, sentinel-b:26380")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "voicebot")
    monkeypatch.setenv("REDIS_URL", "redis://ignored-host:6379/4")
    target = RedisTarget.from_settings(load_settings())
    assert target.sentinels == (("10.0.0.1", 26379), ("sentinel-b", 26380))
    assert target.master == "voicebot"
    assert target.db == 4
    assert "ignored-host" not in target.describe()


def test_passwords_and_the_replica_wait_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "redis-password-value")
    monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", "sentinel-password-value")
    monkeypatch.setenv("VOICEBOT_REDIS_MIN_REPLICAS", "2")
    monkeypatch.setenv("VOICEBOT_REDIS_REPLICA_TIMEOUT", "0.25")
    settings = load_settings()
    target = RedisTarget.from_settings(settings)
    assert (target.password, target.sentinel_password) == (
        "redis-password-value",
        "sentinel-password-value",
    )
    assert (settings.redis_min_replicas, settings.redis_replica_timeout) == (2, 0.25)
    for shown in (repr(settings), repr(target), target.describe()):
        assert "password-value" not in shown


def test_no_replica_wait_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOICEBOT_REDIS_MIN_REPLICAS", raising=False)
    assert load_settings().redis_min_replicas == 0


@pytest.mark.parametrize("value", ["sentinel-a", "sentinel-a:port", "host:70000", ":26379"])
def test_a_malformed_sentinel_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", f"127.0.0.1:26379,{value}")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "REDIS_SENTINELS" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_sentinels_without_a_master_name_refuse_to_start() -> None:
    env = {**CREDENTIALS, "REDIS_SENTINELS": "127.0.0.1:26379"}
    refused(run_bot("check-config", env), "check-config", "REDIS_SENTINEL_MASTER")


def test_check_config_passes_when_every_sentinel_knows_the_primary(
    sentinels: SentinelGroup,
) -> None:
    result = run_bot("check-config", {**CREDENTIALS, **sentinels.env()})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "settings OK"


def test_check_config_reports_a_sentinel_that_does_not_answer(sentinels: SentinelGroup) -> None:
    silent = f"127.0.0.1:{free_port()}"
    env = {
        **CREDENTIALS,
        **sentinels.env(),
        "REDIS_SENTINELS": f"{sentinels.sentinel_hosts},{silent}",
        "REDIS_PASSWORD": "redis-password-value",
    }
    result = run_bot("check-config", env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"voicebot: invalid setting REDIS_SENTINELS: the sentinel at {silent} does not answer "
        "(ConnectionError)"
    )
    assert "redis-password-value" not in result.stdout + result.stderr


def test_check_config_reports_a_master_name_the_sentinels_do_not_know(
    sentinels: SentinelGroup,
) -> None:
    env = {**CREDENTIALS, **sentinels.env(), "REDIS_SENTINEL_MASTER": "no-such-primary"}
    result = run_bot("check-config", env)
    assert result.returncode == 2
    first = sentinels.sentinel_hosts.split(",")[0]
    assert result.stderr.strip() == (
        "voicebot: invalid setting REDIS_SENTINEL_MASTER: the sentinel at "
        f"{first} monitors no primary named 'no-such-primary'"
    )
