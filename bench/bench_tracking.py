"""Track many jobs under review at once with the real worker, and measure what it costs.

Seeds N jobs that enter MetaStudio review together at the local MetaStudio and records N
approval requests the way the bot leaves them after an approve click and a submit: decided
by an approver, submitted, the card in the local Slack updated, the decision and submit
replies posted, the job watched by the review sweep. Then starts ``python -m bot worker``
against a private Redis and waits until every job's outcome is posted in its thread. Prints:

- MetaStudio calls per job per review (and the ideal: one poll per interval of review);
- delay from the review's end to the outcome post, p50 / p95, and as a ratio of the poll
  interval (target: p95 within 1.1x);
- worker RSS, idle and at its peak (target: under 200 MB);
- Redis memory per tracked job: everything the bot keeps for it (request, job index, audit
  records, the sweep's watch, queue entries), measured on a private server (target: under
  2 KB).

    .venv/bin/python -m bench.bench_tracking [-n 10000] [--interval 30] [--review 60]
                                             [--window 120]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bot.approvals import ApprovalStatus, ApprovalStore, RequestLimits
from bot.audit import AuditLog
from bot.metastudio import JobState
from sandbox.localredis import start_redis_server
from sandbox.metastudio import (
    LOCAL_AK,
    LOCAL_PROJECT_ID,
    LOCAL_SK,
    LocalMetaStudio,
    ReviewPlan,
)
from sandbox.serve import ServerThread
from sandbox.slack import LocalSlack

REPO = Path(__file__).resolve().parents[1]
PREFIX = "vbbench:"
CHANNEL = "CBENCH0001"
REQUESTER = "UBENCHREQ1"
APPROVER = "UBENCHAPR1"
# VOICEBOT_POLL_MAX_INTERVAL as a multiple of the poll interval (the defaults: 300 / 30).
MAX_INTERVAL_FACTOR = 10


KINDS = (
    (f"{PREFIX}audit", "audit stream"),
    (f"{PREFIX}approval:", "request"),
    (f"{PREFIX}job:", "job index"),
)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def used_memory(client: aioredis.Redis) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def memory_by_kind(client: aioredis.Redis) -> dict[str, int]:
    """MEMORY USAGE of every key, summed by what the key is for."""
    keys = [key async for key in client.scan_iter(count=1000)]
    totals: dict[str, int] = {}
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        async with client.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.memory_usage(key, samples=0)
            sizes = await pipe.execute()
        for key, size in zip(chunk, sizes, strict=True):
            kind = next((name for start, name in KINDS if key.startswith(start)), "indexes")
            totals[kind] = totals.get(kind, 0) + int(size or 0)
    return totals


# The benchmark records many requests at once; the requesters' limits are not what it measures.
NO_LIMITS = RequestLimits(max_open=1_000_000, per_window=1_000_000)


async def record_requests(
    client: aioredis.Redis, slack: LocalSlack, jobs: list[str]
) -> dict[str, str]:
    """One approved and submitted request per job, with its card; returns card ts -> job id."""
    audit = AuditLog(client, PREFIX)
    store = ApprovalStore(client, PREFIX, ttl_seconds=86400, allow_self_approval=False, audit=audit)
    cards: dict[str, str] = {}

    async def one(job_id: str) -> None:
        draft = store.draft(
            tenant="T0LOCAL",
            team_id="T0LOCAL",
            enterprise_id=None,
            requester=REQUESTER,
            origin_channel=CHANNEL,
            card_channel=CHANNEL,
            job_id=job_id,
            body={"voice_name": f"bench-{job_id[:8]}", "sex": "FEMALE", "language": "CN"},
            app_user_id=None,
            auto_approve=False,
            job_state=str(JobState.UPLOADING),
            job_reject_times=0,
            job_updated=int(time.time() * 1000),
        )
        await store.reserve(draft, NO_LIMITS)
        card = slack.state.post(CHANNEL, text=f"request {draft.id}", blocks=[], user="U0BOT")
        request = await store.create(draft, card_channel=CHANNEL, card_ts=card.ts)
        await store.decide(
            request.id,
            payload_hash=request.short_hash,
            actor=APPROVER,
            tenant="T0LOCAL",
            channel=CHANNEL,
            approve=True,
            reason=None,
        )
        await store.claim_submit(request.id)
        submitted = await store.transition(
            request.id,
            ApprovalStatus.SUBMITTED,
            audit_action="submitted",
            job_state=str(JobState.SYSTEM_AUDITING),
        )
        assert submitted is not None
        # What the notifier leaves: the card showing "submitted", both replies posted.
        await store.set_shown_render(request.id, submitted.render_key)
        await store.mark(request.id, "decision")
        await store.mark(request.id, "submitted")
        cards[card.ts] = job_id

    for start in range(0, len(jobs), 500):
        await asyncio.gather(*(one(j) for j in jobs[start : start + 500]))
    return cards


async def main_async(args: argparse.Namespace) -> None:
    server = start_redis_server()
    url = server.url
    ms = LocalMetaStudio(
        review=ReviewPlan(system_delay=args.review / 2, admin_delay=args.review / 2)
    )
    slack = LocalSlack()
    worker: subprocess.Popen[bytes] | None = None
    try:
        with ServerThread(ms.app) as ms_server, slack.serve():
            client: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True)
            base_memory = await used_memory(client)

            seeded_at = time.time()
            # Reviews end spread over a window, as human reviews do, not all in one instant.
            jobs: list[str] = []
            ends: dict[str, float] = {}
            for i in range(args.n):
                review = args.review + args.window * i / args.n
                ms.review = ReviewPlan(system_delay=review / 2, admin_delay=review / 2)
                job_id = ms.seed_job(state=JobState.SYSTEM_AUDITING, voice_name=f"v{i}")
                jobs.append(job_id)
                ends[job_id] = time.time() + review
            review_end = seeded_at + args.review
            cards = await record_requests(client, slack, jobs)
            tracked_memory = await used_memory(client)
            by_kind = await memory_by_kind(client)
            setup_done = time.time()
            print(f"setup (seed, record, watch) {setup_done - seeded_at:.1f}s")
            if setup_done > review_end - args.interval / 2:
                print("warning: the review ends too soon after setup; raise --review")
            requests_before = ms.stats()["requests"]

            env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VOICEBOT_"))}
            env.update(
                {
                    "PYTHONPATH": str(REPO),
                    "REDIS_URL": url,
                    "VOICEBOT_REDIS_PREFIX": PREFIX,
                    "VOICEBOT_QUEUE_NAME": f"{PREFIX}queue",
                    "SLACK_API_URL": slack.api_url,
                    "SLACK_BOT_TOKEN": "xoxb-local",
                    "HUAWEICLOUD_SDK_AK": LOCAL_AK,
                    "HUAWEICLOUD_SDK_SK": LOCAL_SK,
                    "HUAWEICLOUD_SDK_PROJECT_ID": LOCAL_PROJECT_ID,
                    "METASTUDIO_ENDPOINT": ms_server.url,
                    "VOICEBOT_POLL_INTERVAL": str(args.interval),
                    "VOICEBOT_POLL_MAX_INTERVAL": str(args.interval * MAX_INTERVAL_FACTOR),
                    "VOICEBOT_WORKER_CONCURRENCY": "100",
                }
            )
            worker = subprocess.Popen(  # noqa: ASYNC220 (started once, before timing)
                [sys.executable, "-m", "bot", "worker"],
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(2)
            idle_rss = rss_mb(worker.pid)
            peak_rss = idle_rss
            cpu_start = cpu_seconds(worker.pid)
            deadline = review_end + args.window + 3 * args.interval + 120
            posted: dict[str, float] = {}
            seen = 0
            while len(posted) < args.n and time.time() < deadline:
                await asyncio.sleep(1)
                peak_rss = max(peak_rss, rss_mb(worker.pid))
                calls_so_far = slack.calls("chat.postMessage")
                for call in calls_so_far[seen:]:
                    thread = call.params.get("thread_ts")
                    if thread in cards and thread not in posted:
                        posted[str(thread)] = call.at
                seen = len(calls_so_far)
            calls = ms.stats()["requests"] - requests_before
            cpu_used = cpu_seconds(worker.pid) - cpu_start
            await client.aclose()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        server.stop()

    delays = [at - ends[cards[ts]] for ts, at in posted.items()]
    per_job_bytes = (tracked_memory - base_memory) / args.n
    review_polls = (args.review + args.window / 2) / args.interval
    print(f"jobs tracked at once          {args.n}")
    print(f"outcomes posted               {len(posted)} of {args.n}")
    print(
        f"MetaStudio calls per job      {calls / args.n:.2f}"
        f"  (baseline, one read per poll interval: {review_polls + 1:.2f};"
        f" ratio {calls / args.n / (review_polls + 1):.2f}x)"
    )
    if delays:
        p50, p95 = statistics.median(delays), percentile(delays, 0.95)
        print(
            f"review end -> outcome post    p50 {p50:.2f}s  p95 {p95:.2f}s"
            f"  (p95 / poll interval = {p95 / args.interval:.2f}x, target <= 1.10x)"
        )
    if posted:
        per_outcome = cpu_used / len(posted)
        demand = args.n / args.window
        print(
            f"worker CPU per outcome        {per_outcome * 1000:.1f} ms"
            f"  (one core posts {1 / per_outcome:.0f}/s; this run's reviews end at"
            f" {demand:.0f}/s: {demand * per_outcome:.2f}x of one core)"
        )
    print(
        f"worker RSS                    idle {idle_rss:.0f} MB, peak {peak_rss:.0f} MB"
        f"  (peak / idle = {peak_rss / max(idle_rss, 1):.2f}x, target < 200 MB)"
    )
    print(
        f"Redis memory per tracked job  {per_job_bytes:.0f} B of used_memory"
        f"  ({per_job_bytes / 2048:.2f}x of the 2 KB target)"
    )
    for kind, total in sorted(by_kind.items()):
        print(f"  of which {kind:<15} {total / args.n:4.0f} B per job (MEMORY USAGE)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=10_000, help="jobs under review at once")
    parser.add_argument("--interval", type=float, default=30.0, help="poll interval, seconds")
    parser.add_argument("--review", type=float, default=60.0, help="shortest review, seconds")
    parser.add_argument(
        "--window",
        type=float,
        default=120.0,
        help="reviews end spread over this many seconds after the shortest",
    )
    args: Any = parser.parse_args(argv)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
