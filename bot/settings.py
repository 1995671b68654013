"""The one Settings object: every knob of the bot, read from the environment once.

Environment names are a public contract (deploy scripts rely on them). Slack, Redis and
Huawei Cloud settings keep their ecosystem names; the bot's own policy uses ``VOICEBOT_``.
Secrets are ``SecretStr`` so they never show up in a repr, a log line or a traceback.

No credential has a default: a setting the command needs and the environment lacks stops it
at start-up (``require``). The local run (``sandbox.dev``) supplies its own stand-in values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.i18n import Language

METASTUDIO_REGIONS = ("cn-north-4", "cn-east-3")
HUAWEI_CREDENTIALS = (
    "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, "
    "or VOICEBOT_IAM_USER, VOICEBOT_IAM_PASSWORD and VOICEBOT_IAM_DOMAIN"
)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable, never its value."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


CommaList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
        frozen=True,
    )

    # Slack
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_BOT_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=_env("SLACK_APP_TOKEN")
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=_env("SLACK_API_URL")
    )

    # Redis
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias=_env("REDIS_URL"))
    redis_prefix: str = Field(default="voicebot:", validation_alias=_env("VOICEBOT_REDIS_PREFIX"))
    # Sentinel (``host:port,host:port``): when set, the primary is asked of the sentinels and
    # REDIS_URL gives only the database number.
    redis_sentinels: CommaList = Field(default=(), validation_alias=_env("REDIS_SENTINELS"))
    redis_sentinel_master: str | None = Field(
        default=None, validation_alias=_env("REDIS_SENTINEL_MASTER")
    )
    redis_password: SecretStr | None = Field(default=None, validation_alias=_env("REDIS_PASSWORD"))
    redis_sentinel_password: SecretStr | None = Field(
        default=None, validation_alias=_env("REDIS_SENTINEL_PASSWORD")
    )
    # Replicas that must hold a submit claim or a decision before the bot acts on it (WAIT);
    # 0: no wait (a single Redis with no replica).
    redis_min_replicas: int = Field(
        default=0, ge=0, validation_alias=_env("VOICEBOT_REDIS_MIN_REPLICAS")
    )
    redis_replica_timeout: float = Field(
        default=0.5, gt=0, le=10, validation_alias=_env("VOICEBOT_REDIS_REPLICA_TIMEOUT")
    )

    # Huawei Cloud MetaStudio
    huaweicloud_sdk_ak: SecretStr | None = Field(
        default=None, validation_alias=_env("HUAWEICLOUD_SDK_AK")
    )
    huaweicloud_sdk_sk: SecretStr | None = Field(
        default=None, validation_alias=_env("HUAWEICLOUD_SDK_SK")
    )
    huaweicloud_sdk_project_id: str | None = Field(
        default=None, validation_alias=_env("HUAWEICLOUD_SDK_PROJECT_ID")
    )
    metastudio_region: str = Field(default="cn-north-4", validation_alias=_env("METASTUDIO_REGION"))
    metastudio_endpoint_override: str | None = Field(
        default=None, validation_alias=_env("METASTUDIO_ENDPOINT")
    )
    metastudio_timeout: float = Field(
        default=10.0, gt=0, validation_alias=_env("VOICEBOT_METASTUDIO_TIMEOUT")
    )
    iam_endpoint: str | None = Field(
        default=None, validation_alias=_env("HUAWEICLOUD_SDK_IAM_ENDPOINT")
    )
    iam_user: str | None = Field(default=None, validation_alias=_env("VOICEBOT_IAM_USER"))
    iam_password: SecretStr | None = Field(
        default=None, validation_alias=_env("VOICEBOT_IAM_PASSWORD")
    )
    iam_domain: str | None = Field(default=None, validation_alias=_env("VOICEBOT_IAM_DOMAIN"))
    # After MetaStudio refused the credentials, no call is made with them until they change,
    # or until one probe this many seconds later (the gateway's 5-minute lockout) succeeds.
    metastudio_auth_probe_after: float = Field(
        default=300.0, gt=0, validation_alias=_env("VOICEBOT_METASTUDIO_AUTH_PROBE_AFTER")
    )
    # After a submit failed without a clear answer (502, 504, timeout, lost connection), it
    # may still land: no re-send until this many seconds have passed and a read shows it did
    # not. Well above the gateway's longest backend timeout (60 s).
    submit_settle: float = Field(
        default=120.0, ge=0, validation_alias=_env("VOICEBOT_SUBMIT_SETTLE")
    )

    # HTTP server
    port: int = Field(default=3000, ge=0, le=65535, validation_alias=_env("PORT"))

    # Bot policy
    admins: CommaList = Field(default=(), validation_alias=_env("VOICEBOT_ADMINS"))
    approval_channel: str | None = Field(
        default=None, validation_alias=_env("VOICEBOT_APPROVAL_CHANNEL")
    )
    allow_self_approval: bool = Field(
        default=False, validation_alias=_env("VOICEBOT_ALLOW_SELF_APPROVAL")
    )
    require_approval: bool = Field(default=True, validation_alias=_env("VOICEBOT_REQUIRE_APPROVAL"))
    # Distinct approvers a request needs before its submit; `/voice policy` sets a channel's.
    required_approvals: int = Field(
        default=1, ge=1, le=10, validation_alias=_env("VOICEBOT_REQUIRED_APPROVALS")
    )
    # Seconds a user group's members are trusted before usergroups.users.list is asked again:
    # leaving a group takes its roles away at the next refresh.
    usergroup_cache_seconds: float = Field(
        default=60.0, ge=0, validation_alias=_env("VOICEBOT_USERGROUP_CACHE_SECONDS")
    )
    approval_ttl: int = Field(default=86400, gt=0, validation_alias=_env("VOICEBOT_APPROVAL_TTL"))
    # The language of posts in channels (cards, thread posts); `/voice policy` sets a
    # channel's. What one user sees follows their Slack locale, read with users.info and kept
    # this long (seconds).
    language: Language = Field(default="en", validation_alias=_env("VOICEBOT_LANGUAGE"))
    user_locale_cache_seconds: float = Field(
        default=86400.0, ge=0, validation_alias=_env("VOICEBOT_USER_LOCALE_CACHE_SECONDS")
    )
    # Refuse to ask for a job without the voice owner's authorization letter, or whose audio
    # MetaStudio assessed out of range: either would fail review.
    block_without_authorization: bool = Field(
        default=False, validation_alias=_env("VOICEBOT_BLOCK_WITHOUT_AUTHORIZATION")
    )
    block_failed_assessment: bool = Field(
        default=False, validation_alias=_env("VOICEBOT_BLOCK_FAILED_ASSESSMENT")
    )
    # Training quotas shown on the card: cached this long (seconds); a read slower than
    # ``quota_timeout`` leaves the card without them.
    quota_cache_ttl: float = Field(
        default=60.0, ge=0, validation_alias=_env("VOICEBOT_QUOTA_CACHE_TTL")
    )
    quota_timeout: float = Field(default=2.0, gt=0, validation_alias=_env("VOICEBOT_QUOTA_TIMEOUT"))
    # Per requester: pending requests at once, and requests per window (seconds).
    max_open_requests: int = Field(
        default=5, gt=0, validation_alias=_env("VOICEBOT_MAX_OPEN_REQUESTS")
    )
    request_limit: int = Field(default=10, gt=0, validation_alias=_env("VOICEBOT_REQUEST_LIMIT"))
    request_window: float = Field(
        default=3600.0, gt=0, validation_alias=_env("VOICEBOT_REQUEST_WINDOW")
    )
    poll_interval: float = Field(
        default=30.0, gt=0, validation_alias=_env("VOICEBOT_POLL_INTERVAL")
    )
    poll_max_interval: float = Field(
        default=300.0, gt=0, validation_alias=_env("VOICEBOT_POLL_MAX_INTERVAL")
    )
    worker_concurrency: int = Field(
        default=100, gt=0, validation_alias=_env("VOICEBOT_WORKER_CONCURRENCY")
    )
    job_timeout: float = Field(default=60.0, gt=0, validation_alias=_env("VOICEBOT_JOB_TIMEOUT"))
    queue_name: str = Field(default="voicebot:arq", validation_alias=_env("VOICEBOT_QUEUE_NAME"))
    # How often a worker revives tracked requests that lost their queue job (seconds; the
    # passes fall on whole minutes' fractions, so 1 to 60).
    resume_interval: int = Field(
        default=60, ge=1, le=60, validation_alias=_env("VOICEBOT_RESUME_INTERVAL")
    )
    # Unset: the worker serves no metrics.
    worker_metrics_port: int | None = Field(
        default=None, ge=0, le=65535, validation_alias=_env("VOICEBOT_WORKER_METRICS_PORT")
    )

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "huaweicloud_sdk_ak",
        "huaweicloud_sdk_sk",
        "huaweicloud_sdk_project_id",
        "iam_user",
        "iam_password",
        "iam_domain",
        "redis_password",
        "redis_sentinel_password",
        "redis_sentinel_master",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # ``FOO=`` in an env file is as good as no FOO at all.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("admins", "redis_sentinels", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _host_ports(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{entry!r} is not host:port")
        return value

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return [
            (host, int(port))
            for host, _, port in (entry.rpartition(":") for entry in self.redis_sentinels)
        ]

    @field_validator("slack_api_url")
    @classmethod
    def _slash_terminated(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("metastudio_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value not in METASTUDIO_REGIONS:
            raise ValueError(f"must be one of {', '.join(METASTUDIO_REGIONS)}")
        return value

    @property
    def metastudio_endpoint(self) -> str:
        if self.metastudio_endpoint_override:
            return self.metastudio_endpoint_override.rstrip("/")
        return f"https://metastudio.{self.metastudio_region}.myhuaweicloud.com"

    @property
    def has_metastudio_credentials(self) -> bool:
        return bool(self.huaweicloud_sdk_ak and self.huaweicloud_sdk_sk)

    def secret(self, field: str) -> str:
        """The value of a secret a component cannot work without; ConfigError naming its
        variable when it is unset (``require`` normally stops the process before)."""
        value = getattr(self, field)
        if not isinstance(value, SecretStr):
            raise ConfigError(f"missing setting {_ENV_NAMES[field]}")
        return value.get_secret_value()


_ENV_NAMES = {
    name: (
        field.validation_alias.choices[0]
        if isinstance(field.validation_alias, AliasChoices)
        else name.upper()
    )
    for name, field in Settings.model_fields.items()
}


def _missing_huawei(settings: Settings) -> str | None:
    """The first Huawei Cloud credential missing: AK/SK, else the IAM user settings."""
    ak, sk = settings.huaweicloud_sdk_ak, settings.huaweicloud_sdk_sk
    if ak is not None or sk is not None:
        return "HUAWEICLOUD_SDK_SK" if sk is None else "HUAWEICLOUD_SDK_AK" if ak is None else None
    iam = (
        ("VOICEBOT_IAM_USER", settings.iam_user),
        ("VOICEBOT_IAM_PASSWORD", settings.iam_password),
        ("VOICEBOT_IAM_DOMAIN", settings.iam_domain),
    )
    if any(value is not None for _, value in iam):
        return next((name for name, value in iam if value is None), None)
    return "HUAWEICLOUD_SDK_AK"


@dataclass(frozen=True)
class Needs:
    """What a command needs beyond the defaults. Every one talks to Slack (the bot token)
    and to MetaStudio (credentials, project id); some also receive Slack's requests (the
    signing secret) or connect over Socket Mode (the app-level token)."""

    slack_requests: bool = True
    socket_mode: bool = False


def require(settings: Settings, command: str, needs: Needs) -> None:
    """Raise ConfigError naming the first setting ``command`` cannot run without."""
    needed = [
        ("SLACK_SIGNING_SECRET", needs.slack_requests and settings.slack_signing_secret is None),
        ("SLACK_BOT_TOKEN", settings.slack_bot_token is None),
        ("SLACK_APP_TOKEN", needs.socket_mode and settings.slack_app_token is None),
    ]
    missing = next((name for name, absent in needed if absent), None)
    hint = ""
    if missing is None and settings.redis_sentinels and settings.redis_sentinel_master is None:
        missing, hint = "REDIS_SENTINEL_MASTER", " (the primary's name, as REDIS_SENTINELS know it)"
    if missing is None:
        missing = _missing_huawei(settings)
        hint = f" (Huawei Cloud credentials: {HUAWEI_CREDENTIALS})"
    if missing is None and settings.huaweicloud_sdk_project_id is None:
        missing, hint = "HUAWEICLOUD_SDK_PROJECT_ID", " (the IAM project id of the region)"
    if missing is not None:
        raise ConfigError(f"missing setting {missing}: `python -m bot {command}` needs it{hint}")


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides) or raise ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        env_name = _ENV_NAMES.get(field, field.upper())
        raise ConfigError(f"invalid setting {env_name}: {first['msg']}") from None
