"""Notice the end of many reviews with a few list calls instead of one read per job.

Jobs the bot is waiting on sit in one Redis hash (job id -> request id). Every poll
interval the sweep pages through MetaStudio's list of jobs still under review (100 per call)
and reports the watched jobs missing from it: their review ended, and only those get a
detail read. 10,000 jobs under review cost 100 list calls per interval, not 10,000 reads.
Knows nothing of Slack or arq.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.metastudio import UNDER_REVIEW_STATES, MetaStudioClient
from bot.redis import Keys, StoreUnavailable, unavailable_on_redis_errors

PAGE = 100
_STATES = sorted(UNDER_REVIEW_STATES)


class ReviewSweep:
    def __init__(self, redis: Redis, prefix: str, metastudio: MetaStudioClient) -> None:
        self._redis = redis
        self._metastudio = metastudio
        self.key = Keys(prefix)("reviewing")

    async def watch(self, job_id: str, request_id: str) -> None:
        with unavailable_on_redis_errors(StoreUnavailable):
            await self._redis.hset(self.key, job_id, request_id)  # type: ignore[misc]

    async def unwatch(self, job_id: str) -> None:
        with unavailable_on_redis_errors(StoreUnavailable):
            await self._redis.hdel(self.key, job_id)  # type: ignore[misc]

    async def watched(self) -> dict[str, str]:
        with unavailable_on_redis_errors(StoreUnavailable):
            found: dict[str, str] = await self._redis.hgetall(self.key)  # type: ignore[misc]
        return found

    async def ended(self) -> list[str]:
        """Request ids whose job is no longer under review (raises MetaStudioError on a
        fault, so a sweep never reports a job it could not see as ended)."""
        watched = await self.watched()
        if not watched:
            return []
        reviewing: set[str] = set()
        offset = 0
        while True:
            page = await self._metastudio.list_jobs(states=_STATES, offset=offset, limit=PAGE)
            reviewing.update(job.job_id for job in page.jobs)
            offset += PAGE
            if not page.jobs or offset >= page.count:
                break
        return [request_id for job_id, request_id in watched.items() if job_id not in reviewing]
