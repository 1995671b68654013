"""The review-tracking worker (``python -m bot worker``): arq functions and their settings.

``track_request`` takes one step of a request (``Tracker.step``), posts what the step made
due (``Notifier.flush``) and reschedules itself with ``arq.Retry`` until the request is
finished. A cron job expires pending requests past their deadline. All state is in Redis,
so a worker killed at any point is replaced by the next one without losing a step.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from arq import Retry, cron
from arq.worker import Worker, func

from bot.app import Services, open_services
from bot.queue import TRACK_FUNCTION, redis_settings
from bot.settings import Settings
from bot.tracking import PollPolicy, Tracker

log = logging.getLogger("bot.worker")

# A request is tracked through review and training, which can take weeks; arq counts each
# reschedule as a try, so the ceiling only stops a request that loops forever.
MAX_TRIES = 1_000_000
# Slack or Redis failing while posting: try again soon, but not in a tight loop.
NOTIFY_RETRY = (1.0, 30.0)


def _services(ctx: dict[str, Any]) -> Services:
    services: Services = ctx["services"]
    return services


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    services = await open_services(settings)
    ctx["services"] = services
    ctx["tracker"] = Tracker(
        services.approvals,
        services.metastudio,
        PollPolicy(
            interval=settings.poll_interval,
            cap=settings.poll_max_interval,
            training_interval=settings.poll_max_interval,
        ),
    )
    ctx["faults"] = {}
    ctx["notify_faults"] = {}
    log.info("worker ready (queue %s)", settings.queue_name)


async def shutdown(ctx: dict[str, Any]) -> None:
    services = ctx.get("services")
    if services is not None:
        await services.aclose()


async def track_request(ctx: dict[str, Any], request_id: str) -> str:
    services = _services(ctx)
    tracker: Tracker = ctx["tracker"]
    faults: dict[str, int] = ctx["faults"]
    step = await tracker.step(request_id, faults=faults.get(request_id, 0))
    if step.fault is not None:
        faults[request_id] = faults.get(request_id, 0) + 1
    else:
        faults.pop(request_id, None)
    if step.request is not None:
        try:
            await services.notifier.flush(step.request, step.job)
        except Exception as error:
            notify_faults: dict[str, int] = ctx["notify_faults"]
            count = notify_faults.get(request_id, 0) + 1
            notify_faults[request_id] = count
            low, high = NOTIFY_RETRY
            delay = min(high, low * 2 ** min(count, 10)) * random.uniform(0.5, 1.0)
            log.warning("request %s: posting to Slack failed (%s); retry in %.1fs",
                        request_id, type(error).__name__, delay)
            raise Retry(defer=delay) from None
        ctx["notify_faults"].pop(request_id, None)
    if step.next_poll is not None:
        raise Retry(defer=step.next_poll)
    faults.pop(request_id, None)
    return str(step.request.status) if step.request else "missing"


async def expire_requests(ctx: dict[str, Any]) -> int:
    """Expire pending requests past their deadline; the tracking job posts the news."""
    services = _services(ctx)
    expired = await services.approvals.expire_due(limit=500)
    for request in expired:
        await services.queue.enqueue_tracking(request.id)
    return len(expired)


def build_worker(settings: Settings, **overrides: Any) -> Worker:
    options: dict[str, Any] = {
        "functions": [
            func(track_request, name=TRACK_FUNCTION, max_tries=MAX_TRIES,
                 timeout=settings.job_timeout),
        ],
        "cron_jobs": [
            cron(expire_requests, second=set(range(0, 60, 10)), run_at_startup=True,
                 timeout=settings.job_timeout),
        ],
        "queue_name": settings.queue_name,
        "redis_settings": redis_settings(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {"settings": settings},
        "max_jobs": settings.worker_concurrency,
        "job_timeout": settings.job_timeout,
        "keep_result": 0,
        "poll_delay": 0.2,
        "max_tries": MAX_TRIES,
        "health_check_key": f"{settings.redis_prefix}worker:health",
    }
    options.update(overrides)
    return Worker(**options)


def run_worker(settings: Settings) -> None:
    # arq binds its signal handlers to the loop it finds at construction time.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        build_worker(settings).run()
    finally:
        loop.close()
