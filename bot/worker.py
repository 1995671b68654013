"""The review-tracking worker (``python -m bot worker``): arq functions and their settings.

``track_request`` takes one step of a request (``Tracker.step``), posts what the step made
due (``Notifier.flush``) and reschedules itself with ``arq.Retry`` while the step says when to
look again. A job under review is left to ``sweep_reviews``, which lists the jobs still under
review and enqueues the next step of each request whose review ended. Cron jobs expire
pending requests past their deadline and re-enqueue any tracked request that has neither a
queue job nor the sweep's watch. All state is in Redis, so a worker killed at any point is
replaced by the next one without losing a step.

``WorkerSupervisor`` (behind ``run_worker``) keeps the process alive through Redis outages:
arq's Worker ends on the first Redis error of its loop, so the supervisor closes it and,
after a backoff, starts a fresh one until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

from arq import Retry, cron
from arq.worker import Worker, func
from prometheus_client import start_http_server
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.backoff import backoff
from bot.metastudio import MetaStudioError
from bot.metrics import WorkerMetrics
from bot.queue import SWEEP_FUNCTION, TRACK_FUNCTION, redis_settings
from bot.redis import UNAVAILABLE_ERRORS, Keys, StoreUnavailable, redis_unavailable
from bot.redis_ha import RedisTarget
from bot.review_sweep import ReviewSweep
from bot.services import Services, open_services
from bot.settings import Settings
from bot.slack.notify import NotifyBusy
from bot.tracking import PollPolicy, Tracker

log = logging.getLogger("bot.worker")

# A request is tracked through review and training, which can take weeks; arq counts each
# reschedule as a try, so the ceiling only stops a request that loops forever.
MAX_TRIES = 1_000_000
# Slack or Redis failing while posting: try again soon, but not in a tight loop.
NOTIFY_RETRY_CAP = 30.0
# Another process is posting for the request: look again shortly.
BUSY_RETRY = 0.5
SWEEPS_PER_INTERVAL = 4
# When the review sweep last listed the jobs under review (or began failing to).
LISTED_TTL = 86400
# A step is cut off before arq's own timeout would end the job for good.
STEP_SHARE_OF_TIMEOUT = 0.8
# While Redis is away a new Worker is tried after a jittered, doubling wait up to the cap.
RECONNECT_BASE = 0.5
RECONNECT_CAP = 5.0


@dataclass
class WorkerState:
    """What one worker process keeps between jobs: arq hands every job the same ``ctx``, and
    ``startup`` puts this in it, under ``state``."""

    settings: Settings
    services: Services
    metrics: WorkerMetrics
    tracker: Tracker
    sweep: ReviewSweep
    # Consecutive faults per request (and per sweep), which their backoff grows with.
    faults: dict[str, int] = field(default_factory=dict)
    notify_faults: dict[str, int] = field(default_factory=dict)
    metrics_server: WSGIServer | None = None


def _state(ctx: dict[str, Any]) -> WorkerState:
    state = ctx.get("state")
    if not isinstance(state, WorkerState):
        raise RuntimeError("the worker's state is missing: its startup did not run")
    return state


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    if "state" in ctx:
        # A Worker started after a Redis outage: the process's services (their Redis clients
        # reconnect by themselves), metrics and step state carry on.
        await _state(ctx).services.queue.enqueue_sweep()
        log.info("worker ready again (queue %s)", settings.queue_name)
        return
    services = await open_services(settings)
    metrics = WorkerMetrics()
    metrics.watch_credentials(services.credentials)
    state = WorkerState(
        settings=settings,
        services=services,
        metrics=metrics,
        sweep=ReviewSweep(services.approvals, services.metastudio),
        tracker=Tracker(
            services.approvals,
            services.metastudio,
            PollPolicy(
                interval=settings.poll_interval,
                cap=settings.poll_max_interval,
                training_interval=settings.poll_max_interval,
            ),
            review_sweep=True,
            submit_settle=settings.submit_settle,
        ),
    )
    ctx["state"] = state
    # Started by an operator, perhaps after fixing the clock or the account: held calls
    # get one probe now rather than at the next probe time.
    await services.credentials.probe_soon()
    if settings.worker_metrics_port is not None:
        state.metrics_server, _ = start_http_server(
            settings.worker_metrics_port, registry=metrics.registry
        )
    await services.queue.enqueue_sweep()
    log.info("worker ready (queue %s)", settings.queue_name)


async def shutdown(ctx: dict[str, Any]) -> None:
    state = ctx.get("state")
    if not isinstance(state, WorkerState):
        return
    if state.metrics_server is not None:
        state.metrics_server.shutdown()
    await state.services.aclose()


def _backoff(counts: dict[str, int], request_id: str, base: float, cap: float) -> float:
    count = counts.get(request_id, 0) + 1
    counts[request_id] = count
    return backoff(count, base=base, cap=cap)


async def track_request(ctx: dict[str, Any], request_id: str) -> str:
    """One step of a request, then its posts; reschedules itself while the step asks to.

    Every failure reschedules rather than ends the job: a job that ends while its request
    is still active would leave the request to the once-a-minute ``resume_active``.
    """
    state = _state(ctx)
    settings = state.settings
    base = min(1.0, settings.poll_interval)
    try:
        async with asyncio.timeout(settings.job_timeout * STEP_SHARE_OF_TIMEOUT):
            return await _track(state, request_id)
    except Retry:
        raise
    except NotifyBusy:
        raise Retry(defer=BUSY_RETRY * random.uniform(0.5, 1.0)) from None
    except (
        SlackApiError,
        SlackClientError,
        StoreUnavailable,
        RedisError,
        MetaStudioError,
        OSError,
        TimeoutError,
    ) as error:
        state.metrics.retries.labels(error=type(error).__name__).inc()
        delay = _backoff(state.notify_faults, request_id, base, NOTIFY_RETRY_CAP)
        log.warning("request %s: %s; retry in %.1fs", request_id, type(error).__name__, delay)
        raise Retry(defer=delay) from None
    except Exception as error:
        state.metrics.retries.labels(error=type(error).__name__).inc()
        delay = _backoff(state.faults, request_id, base, settings.poll_max_interval)
        log.exception("request %s: unexpected error; retry in %.1fs", request_id, delay)
        raise Retry(defer=delay) from None


async def _track(state: WorkerState, request_id: str) -> str:
    services = state.services
    faults = state.faults
    step = await state.tracker.step(request_id, faults=faults.get(request_id, 0))
    metrics = state.metrics
    outcome = "fault" if step.fault else str(step.request.status) if step.request else "missing"
    metrics.steps.labels(status=outcome).inc()
    if step.fault is not None:
        faults[request_id] = faults.get(request_id, 0) + 1
    else:
        faults.pop(request_id, None)
    if step.request is None:
        await services.approvals.forget_active(request_id)
        return "missing"
    metrics.replies.inc(await services.notifier.flush(step.request, step.job))
    state.notify_faults.pop(request_id, None)
    if step.next_poll is not None:
        raise Retry(defer=step.next_poll)
    faults.pop(request_id, None)
    return str(step.request.status)


async def sweep_reviews(ctx: dict[str, Any]) -> int:
    """Start the next step of each request whose review ended; runs several times per poll
    interval (``sweep_period``).

    While the list call keeps failing (MetaStudio down, or an AK/SK allowed to read a job
    but not to list them), every watched request gets a step of its own once per
    ``VOICEBOT_POLL_MAX_INTERVAL``: each reads its job and is watched again if the review
    still runs, so no outcome waits on the list call coming back.
    """
    state = _state(ctx)
    services, settings, sweep, metrics = state.services, state.settings, state.sweep, state.metrics
    # The credentials gauge follows the shared breaker even while no call is made.
    await services.credentials.refresh()
    try:
        listed_key = Keys(settings.redis_prefix)("sweep", "listed")
        try:
            # Listing pages one after another can outlast the job's timeout (many jobs, a
            # slow MetaStudio); running out of time counts as a failed listing.
            async with asyncio.timeout(settings.job_timeout * STEP_SHARE_OF_TIMEOUT):
                result = await sweep.ended()
            ended = result.ended
            metrics.sweeps.labels(result="ok").inc()
            metrics.under_review.set(result.watched)
            metrics.reviews_ended.inc(len(ended))
        except (MetaStudioError, TimeoutError):
            # Kept in Redis: whichever worker process runs the sweep sees the same clock.
            listed = await services.redis.get(listed_key)
            if listed is None or time.time() - float(listed) < settings.poll_max_interval:
                if listed is None:
                    await services.redis.set(listed_key, repr(time.time()), ex=LISTED_TTL)
                raise
            ended = await sweep.watching()
            metrics.sweeps.labels(result="per_job").inc()
            metrics.under_review.set(len(ended))
            log.warning(
                "review sweep: listing keeps failing; reading %d job(s) one by one", len(ended)
            )
        await services.redis.set(listed_key, repr(time.time()), ex=LISTED_TTL)
        for request_id in ended:
            await services.queue.enqueue_tracking(request_id)
    except (MetaStudioError, StoreUnavailable, RedisError, OSError) as error:
        metrics.sweeps.labels(result="failed").inc()
        delay = _backoff(
            state.faults, SWEEP_FUNCTION, settings.poll_interval, settings.poll_max_interval
        )
        log.warning("review sweep: %s; retry in %.1fs", type(error).__name__, delay)
        raise Retry(defer=delay) from None
    state.faults.pop(SWEEP_FUNCTION, None)
    raise Retry(defer=sweep_period(settings.poll_interval) * random.uniform(0.95, 1.0))


def sweep_period(poll_interval: float) -> float:
    """A sweep is cheap (one list call per 100 jobs), so it runs four times per poll interval:
    a review's end is seen within a quarter interval, leaving the rest of the interval for a
    burst of outcomes to be posted."""
    return poll_interval / SWEEPS_PER_INTERVAL


async def expire_requests(ctx: dict[str, Any]) -> int:
    """Expire pending requests past their deadline; the tracking job posts the news."""
    services = _state(ctx).services
    expired = await services.approvals.expire_due(limit=500)
    for request in expired:
        await services.queue.enqueue_tracking(request.id)
    return len(expired)


async def resume_active(ctx: dict[str, Any]) -> int:
    """Re-enqueue every tracked request that is not under review (the review sweep has
    those). arq refuses a second job with the same id, so this only revives requests whose
    job was lost (an enqueue that failed after the click, a job that expired or ended on a
    bug); returns how many it revived."""
    services = _state(ctx).services
    await services.queue.enqueue_sweep()
    revived = 0
    for request_id in await services.approvals.active_ids():
        if await services.queue.enqueue_tracking(request_id):
            revived += 1
    if revived:
        log.warning("re-enqueued %d tracked request(s) that had no queue job", revived)
    return revived


def expiry_period(ttl_seconds: float) -> int:
    """Seconds between expiry sweeps: about a tenth of the TTL, from 1 to 10."""
    for period in (1, 2, 5):
        if ttl_seconds <= period * 10:
            return period
    return 10


def build_worker(settings: Settings, **overrides: Any) -> Worker:
    # Cron names carry the prefix: arq's cron job ids are global across queues.
    prefix = settings.redis_prefix
    options: dict[str, Any] = {
        "functions": [
            func(
                track_request,
                name=TRACK_FUNCTION,
                max_tries=MAX_TRIES,
                timeout=settings.job_timeout,
            ),
            func(
                sweep_reviews,
                name=SWEEP_FUNCTION,
                max_tries=MAX_TRIES,
                timeout=settings.job_timeout,
            ),
        ],
        "cron_jobs": [
            cron(
                expire_requests,
                name=f"{prefix}expire_requests",
                second=set(range(0, 60, expiry_period(settings.approval_ttl))),
                run_at_startup=True,
                timeout=settings.job_timeout,
            ),
            # Every VOICEBOT_RESUME_INTERVAL (a minute), and at startup (which is when a lost
            # job is most likely).
            cron(
                resume_active,
                name=f"{prefix}resume_active",
                second=set(range(0, 60, settings.resume_interval)),
                run_at_startup=True,
                timeout=settings.job_timeout,
            ),
        ],
        "queue_name": settings.queue_name,
        "redis_settings": redis_settings(settings.redis_url, ride_out_blips=True),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {"settings": settings},
        "max_jobs": settings.worker_concurrency,
        "job_timeout": settings.job_timeout,
        # SIGTERM (a deploy) lets running steps finish instead of cancelling them mid-post.
        "job_completion_wait": int(settings.job_timeout),
        "keep_result": 0,
        "poll_delay": 0.2,
        "max_tries": MAX_TRIES,
        "health_check_key": f"{prefix}worker:health",
    }
    options.update(overrides)
    return Worker(**options)


def reconnect_delay(failures: int) -> float:
    """Seconds before the next Worker after ``failures`` Worker ends in a row; jittered so
    that many worker processes do not all knock at once when Redis comes back."""
    return backoff(failures - 1, base=RECONNECT_BASE, cap=RECONNECT_CAP)


class WorkerSupervisor:
    """Runs arq Workers one after another until ``stop``.

    A Worker that ends on a Redis outage (a poll, a heartbeat, the bookkeeping of a job) is
    closed without asking Redis for anything, and a fresh one is started after
    ``reconnect_delay``; it takes over the queue where the last left it (a job cut short
    stays queued, and runs again once arq's in-progress mark expires). All Workers share one
    ``ctx``, so the services, metrics and their server are made once per process. Any other
    error ends the supervisor, as it would have ended the Worker.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx: dict[str, Any] = {"settings": settings}
        self.worker: Worker | None = None
        self.restarts = 0
        self.target = RedisTarget.from_settings(settings)
        self._stopping = asyncio.Event()

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """As arq on SIGTERM: no new steps, running ones get ``job_completion_wait``."""
        self._stopping.set()
        worker = self.worker
        if worker is not None and worker.main_task is not None and not worker.main_task.done():
            worker.handle_sig_wait_for_completion(signal.Signals(signum))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        try:
            while not self._stopping.is_set():
                started = loop.time()
                error = await self._run_one()
                if error is None:
                    return
                # A Worker that ran a while had reached Redis: start the backoff afresh.
                failures = 1 if loop.time() - started > RECONNECT_CAP else failures + 1
                self.restarts += 1
                delay = reconnect_delay(failures)
                log.warning(
                    "Redis unavailable (%s); starting a new worker in %.1fs",
                    type(error).__name__,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            await shutdown(self.ctx)

    async def _run_one(self) -> BaseException | None:
        """One Worker from start to end: the Redis error that ended it, or None if stopped."""
        # Our own pool rather than arq's: arq's knows neither a sentinel password, nor
        # timeouts with Sentinel, nor NOREPLICAS.
        pool = self.target.arq_pool(self.settings.queue_name, ride_out_blips=True)
        worker = build_worker(
            self.settings, handle_signals=False, ctx=self.ctx, on_shutdown=None, redis_pool=pool
        )
        main = asyncio.ensure_future(worker.main())
        worker.main_task = main
        self.worker = worker
        try:
            await asyncio.wait({main})
        except asyncio.CancelledError:
            main.cancel()
            await close_worker(worker, redis_up=False)
            raise
        finally:
            self.worker = None
        error = None if main.cancelled() else main.exception()
        redis_down = redis_unavailable(error)
        await close_worker(worker, redis_up=not redis_down)
        if error is not None and not redis_down:
            raise error
        return error


async def close_worker(worker: Worker, *, redis_up: bool = True) -> None:
    """arq's ``Worker.close`` for a Worker whose Redis may be gone (arq's asks Redis to
    delete its health key and fails when it cannot); it also closes the pool with ``aclose``
    (arq's ``close`` is deprecated by redis-py). Running steps get ``job_completion_wait``."""
    running = [task for task in worker.tasks.values() if not task.done()]
    if running:
        _, late = await asyncio.wait(running, timeout=worker._job_completion_wait or None)
        for task in late:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    pool = worker._pool
    if pool is None:
        return
    if redis_up:
        with contextlib.suppress(*UNAVAILABLE_ERRORS):
            await pool.delete(worker.health_check_key)
    if worker.on_shutdown is not None:
        await worker.on_shutdown(worker.ctx)
    await pool.aclose(close_connection_pool=True)
    worker._pool = None


async def serve_worker(settings: Settings) -> None:
    """The supervised worker until SIGTERM or SIGINT."""
    supervisor = WorkerSupervisor(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, supervisor.stop, signum)
    await supervisor.run()


def run_worker(settings: Settings) -> None:
    asyncio.run(serve_worker(settings))
