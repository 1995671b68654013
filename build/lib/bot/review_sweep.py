"""Notice the end of many reviews with a few list calls instead of one read per job.

The requests whose job is under review are listed in the approval store's tracked index
(job id beside each), kept by the same atomic transitions that change their status. Every
poll interval the sweep pages through MetaStudio's list of jobs still under review (100 per
call) and reports the listed jobs missing from it: their review ended, and only those get a
detail read. 10,000 jobs under review cost 100 list calls per interval, not 10,000 reads,
and a request under review needs no queue job of its own. Knows nothing of Slack or arq.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.approvals import ApprovalStore
from bot.metastudio import UNDER_REVIEW_STATES, MetaStudioClient

PAGE = 100
_STATES = sorted(UNDER_REVIEW_STATES)


@dataclass(frozen=True, slots=True)
class SweepResult:
    """How many jobs the sweep watched, and the requests whose review it saw end."""

    watched: int
    ended: list[str]


class ReviewSweep:
    def __init__(self, approvals: ApprovalStore, metastudio: MetaStudioClient) -> None:
        self._approvals = approvals
        self._metastudio = metastudio

    async def watching(self) -> list[str]:
        """The ids of the requests whose job is under review, as far as the bot knows."""
        return sorted(await self._approvals.under_review())

    async def ended(self) -> SweepResult:
        """The requests whose job is no longer under review (raises MetaStudioError on a
        fault, so a sweep never reports a job it could not see as ended). A request stays
        listed until a step of its request reads the job and moves it on, so one whose step
        was not started this time is reported again by the next sweep."""
        watched = await self._approvals.under_review()
        if not watched:
            return SweepResult(0, [])
        reviewing: set[str] = set()
        offset = 0
        while True:
            page = await self._metastudio.list_jobs(states=_STATES, offset=offset, limit=PAGE)
            reviewing.update(job.job_id for job in page.jobs)
            offset += PAGE
            if not page.jobs or offset >= page.count:
                break
        ended = sorted(request for request, job in watched.items() if job not in reviewing)
        return SweepResult(len(watched), ended)
