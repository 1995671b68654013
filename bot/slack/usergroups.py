"""Who is in a Slack user group: ``usergroups.users.list`` (scope ``usergroups:read``),
cached per process for ``VOICEBOT_USERGROUP_CACHE_SECONDS`` so a burst of clicks costs one
call, while leaving a group takes the role away at the next refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.permissions import GroupLookupFailed


class SlackGroupDirectory:
    def __init__(
        self,
        client: AsyncWebClient,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group: str) -> frozenset[str]:
        now = self._clock()
        cached = self._cache.get(group)
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except SlackApiError as error:
            raise GroupLookupFailed(group, str(error.response.get("error") or "error")) from None
        except (aiohttp.ClientError, TimeoutError):
            raise GroupLookupFailed(group, "slack_unreachable") from None
        users = frozenset(str(user) for user in response.get("users") or ())
        # Failures are never cached: the next check asks Slack again.
        self._cache[group] = (now + self._ttl, users)
        return users
