"""What decides whether a job's review will pass, as the approval card and ``/voice status``
show it: MetaStudio's assessment of the audio, the authorization letter, earlier
rejections and the trainings left of the job's type.

``Readiness`` is the compact summary; ``QuotaReader`` reads the training quotas through a
short in-process cache and never lets one slow or failing read hold up a card.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.i18n import N_, _, current
from bot.metastudio import MetaStudioClient, MetaStudioError, TrainingJob, TrainingQuotas

log = logging.getLogger("bot.readiness")

# The check names people read, by the API's names.
CHECK_NAMES: dict[str, str] = {
    "speed": N_("Speaking speed"),
    "sound": N_("Volume"),
    "snr": N_("Signal-to-noise ratio"),
    "reverb": N_("Reverberation"),
    "dnsmos_ovrl": N_("Overall quality (DNSMOS)"),
    "dnsmos_bak": N_("Background noise (DNSMOS)"),
}


def check_label(name: str) -> str:
    """The check's name in the language spoken now; a check newer than the bot by its API
    name."""
    return _(CHECK_NAMES[name]) if name in CHECK_NAMES else name


def pick_suggestion(zh: str | None, en: str | None) -> str | None:
    """MetaStudio's advice, which it writes in both languages, in the one spoken now (the
    other when that one is empty)."""
    if current() == "zh":
        return zh or en
    return en or zh


@dataclass(frozen=True)
class FailedCheck:
    """One assessment check out of range, as MetaStudio reported it: its advice in both of
    MetaStudio's languages (``suggestion`` picks the one spoken when it is shown)."""

    name: str
    actual: str | None
    expected: str | None
    suggestion_zh: str | None
    suggestion_en: str | None

    @property
    def label(self) -> str:
        return check_label(self.name)

    @property
    def suggestion(self) -> str | None:
        return pick_suggestion(self.suggestion_zh, self.suggestion_en)


@dataclass(frozen=True)
class Readiness:
    """The risks of submitting one job. ``quota_left`` is None when the job's type has no
    counter (or the quota was not read); ``quota_unread`` when the read failed or took too
    long. The checks in range and MetaStudio's overall advice are kept as MetaStudio gave
    them (API names, both languages); ``passed_checks`` and ``suggestion`` put them in the
    language spoken when they are shown."""

    job_type: str | None
    assessed: bool
    failed_checks: tuple[FailedCheck, ...]
    passed_names: tuple[str, ...]
    suggestion_zh: str | None
    suggestion_en: str | None
    authorization: bool
    reject_times: int
    allocated: bool
    quota_left: int | None = None
    # Whether the quota was read (``quota_left`` means something), or the read failed.
    quota_checked: bool = False
    quota_unread: bool = False

    @property
    def passed_checks(self) -> tuple[str, ...]:
        return tuple(check_label(name) for name in self.passed_names)

    @property
    def suggestion(self) -> str | None:
        return pick_suggestion(self.suggestion_zh, self.suggestion_en)

    @property
    def no_quota(self) -> bool:
        """No training of this type left, and none allocated to the job already."""
        return self.quota_left == 0 and not self.allocated

    @property
    def risky(self) -> bool:
        return bool(self.failed_checks) or not self.authorization or self.no_quota

    @classmethod
    def of(
        cls, job: TrainingJob, quotas: TrainingQuotas | None = None, *, quota_unread: bool = False
    ) -> Readiness:
        assess = job.assess_result
        failed: list[FailedCheck] = []
        passed: list[str] = []
        for name, check in assess.checks() if assess is not None else []:
            if check.out_of_range:
                failed.append(
                    FailedCheck(
                        name, check.actual, check.expected, check.suggestion, check.suggestion_en
                    )
                )
            else:
                passed.append(name)
        overall = assess if assess is not None and failed else None
        return cls(
            job_type=str(job.job_type) if job.job_type else None,
            assessed=assess is not None and bool(assess.checks()),
            failed_checks=tuple(failed),
            passed_names=tuple(passed),
            suggestion_zh=overall.suggestion if overall is not None else None,
            suggestion_en=overall.suggestion_en if overall is not None else None,
            authorization=job.has_authorization,
            reject_times=job.reject_times or 0,
            allocated=job.allocated_resource is not None,
            quota_left=quotas.left_for(job.job_type) if quotas is not None else None,
            quota_checked=quotas is not None,
            quota_unread=quota_unread,
        )


class QuotaReader:
    """Training quotas through a cache of ``ttl`` seconds; a read that fails or takes longer
    than ``timeout`` gives None (the card then goes without its quota line)."""

    def __init__(
        self,
        metastudio: MetaStudioClient,
        *,
        ttl: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metastudio = metastudio
        self._ttl = ttl
        self._timeout = timeout
        self._clock = clock
        self._cached: tuple[float, TrainingQuotas] | None = None
        self._lock = asyncio.Lock()

    async def read(self) -> TrainingQuotas | None:
        cached = self._cached
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        try:
            async with asyncio.timeout(self._timeout):
                # One read at a time: a burst of requests shares it.
                async with self._lock:
                    cached = self._cached
                    if cached is not None and self._clock() < cached[0]:
                        return cached[1]
                    quotas = await self._metastudio.training_quotas()
        except (TimeoutError, MetaStudioError) as error:
            log.warning("training quotas not read (%s)", type(error).__name__)
            return None
        if self._ttl > 0:
            self._cached = (self._clock() + self._ttl, quotas)
        return quotas
