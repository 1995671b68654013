"""Whose language a reply is in: each Slack user's own, read from their Slack locale.

``users.info`` with ``include_locale`` (scope ``users:read``) says a user's locale; it is
cached in Redis per workspace and user for ``VOICEBOT_USER_LOCALE_CACHE_SECONDS``, so a
burst of commands costs one call, and in each process for up to a minute of that, so the
lookup made before the ack costs no round trip for a user seen lately. Slack's payloads
carry no locale, so the first command of a user costs one lookup, bounded by
``lookup_timeout`` (the 3 s ack budget is shared). A lookup that fails (Slack down, scope
missing, slow) means English and is remembered briefly, so a Slack outage does not add a slow
call to every command.

``language_middleware`` makes the acting user's language current for the rest of the
dispatch, so for everything a listener says to them; cards and thread posts set their
channel's language themselves (``bot.slack.notify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.i18n import DEFAULT, Language, language_of_locale, speak_from_now
from bot.redis import Keys

log = logging.getLogger(__name__)

# How long a failed lookup's English is kept before Slack is asked again.
_UNKNOWN_TTL_SECONDS: Final = 300
_UNKNOWN: Final = ""
# A process also keeps what it read for up to a minute, so a burst of one user's requests
# costs no Redis round trip before the ack; the most users it keeps before starting afresh.
_MEMORY_SECONDS: Final = 60.0
_MEMORY_USERS: Final = 10_000


class UserLanguages:
    def __init__(
        self,
        client: AsyncWebClient,
        redis: Redis,
        prefix: str,
        *,
        ttl_seconds: float,
        lookup_timeout: float = 1.0,
    ) -> None:
        self._client = client
        self._redis = redis
        self._keys = Keys(prefix)
        self._ttl = max(int(ttl_seconds), 1)
        self._timeout = lookup_timeout
        self._memory_seconds = min(_MEMORY_SECONDS, ttl_seconds)
        self._memory: dict[tuple[str, str], tuple[float, str | None]] = {}

    def key(self, team_id: str, user_id: str) -> str:
        return self._keys("locale", team_id, user_id)

    async def of(self, team_id: str, user_id: str) -> Language:
        """The language ``user_id`` reads (``zh`` for a Chinese Slack locale, else ``en``)."""
        return language_of_locale(await self.locale(team_id, user_id))

    async def locale(self, team_id: str, user_id: str) -> str | None:
        """``user_id``'s Slack locale (``zh-CN``), cached; None when it cannot be read."""
        now = time.monotonic()
        remembered = self._memory.get((team_id, user_id))
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        locale = await self._shared_locale(team_id, user_id)
        if len(self._memory) >= _MEMORY_USERS:
            self._memory.clear()
        self._memory[(team_id, user_id)] = (now + self._memory_seconds, locale)
        return locale

    async def _shared_locale(self, team_id: str, user_id: str) -> str | None:
        """The locale as Redis has it for every process, asking Slack when it has none."""
        key = self.key(team_id, user_id)
        try:
            cached = await self._redis.get(key)
        except RedisError:
            cached = None
        if cached is not None:
            return str(cached) or None
        locale = await self._lookup(user_id)
        ttl = self._ttl if locale else min(self._ttl, _UNKNOWN_TTL_SECONDS)
        with contextlib.suppress(RedisError):
            await self._redis.set(key, locale or _UNKNOWN, ex=ttl)
        return locale

    async def _lookup(self, user_id: str) -> str | None:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.users_info(user=user_id, include_locale=True)
        except SlackApiError as error:
            log.warning("users.info for %s failed: %s", user_id, error.response.get("error"))
            return None
        except (aiohttp.ClientError, TimeoutError):
            log.warning("users.info for %s did not answer", user_id)
            return None
        user = response.get("user") or {}
        locale = user.get("locale") if isinstance(user, dict) else None
        return locale if isinstance(locale, str) and locale else None


Next = Callable[[], Awaitable[Any]]


def language_middleware(
    languages: UserLanguages,
) -> Callable[[AsyncBoltContext, Next], Awaitable[Any]]:
    """A Bolt global middleware: the acting user's language is current for the listener."""

    async def speak_the_users_language(context: AsyncBoltContext, next: Next) -> Any:
        # Bolt's next() only marks the chain as continued; the listener runs after this
        # returns, in this task, so the language is set for the rest of the dispatch.
        user_id, team_id = context.user_id, context.enterprise_id or context.team_id
        found = await languages.of(team_id, user_id) if user_id and team_id else DEFAULT
        speak_from_now(found)
        return await next()

    return speak_the_users_language
