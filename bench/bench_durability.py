"""What waiting for a replica costs on the approve-to-submit path.

Starts a private primary with one replica (real ``redis-server`` processes, watched by three
sentinels, as in the failover tests) and the local MetaStudio, then takes N requests each
through the path a click and the worker take: ``decide`` (approve), then ``Tracker.step``
(claim the submit, POST it, record it). Half the requests go through a store that waits for
no replica (``VOICEBOT_REDIS_MIN_REPLICAS=0``), half through one that waits for one (``1``:
``WAIT`` after the decision and after the claim), interleaved so both see the same machine.
Prints p50 and p99 of each, and their ratio.

    .venv/bin/python -m bench.bench_durability [-n 400]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bot.approvals import ApprovalStore, RequestLimits
from bot.durability import ReplicaWait
from bot.metastudio import MetaStudioClient
from bot.redis_ha import RedisTarget
from bot.settings import Settings
from bot.tracking import PollPolicy, Tracker
from sandbox.metastudio import (
    LOCAL_AK,
    LOCAL_PROJECT_ID,
    LOCAL_SK,
    LocalMetaStudio,
    ReviewPlan,
)
from sandbox.redis_sentinel import SentinelGroup
from sandbox.serve import ServerThread

PREFIX = "vbbench:durability:"
LIMITS = RequestLimits(max_open=1_000_000, per_window=1_000_000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_path(store: ApprovalStore, tracker: Tracker, metastudio: LocalMetaStudio) -> float:
    job = metastudio.seed_job(voice_name="narrator")
    request = store.draft(
        tenant="T1",
        team_id="T1",
        enterprise_id=None,
        requester="UREQ",
        origin_channel="C1",
        card_channel="C1",
        job_id=job,
        body={"voice_name": "narrator", "sex": "FEMALE"},
        app_user_id=None,
        auto_approve=False,
        job_state="WAIT_FILE_UPLOAD",
    )
    await store.reserve(request, LIMITS)
    await store.create(request, card_channel="C1", card_ts="1700000000.000100")
    started = time.perf_counter()
    decision = await store.decide(
        request.id,
        payload_hash=request.payload_hash,
        actor="UAPR",
        tenant="T1",
        channel="C1",
        approve=True,
        reason=None,
    )
    step = await tracker.step(request.id)
    elapsed = time.perf_counter() - started
    assert decision.decided, decision.outcome
    assert step.request is not None, "request vanished"
    assert str(step.request.status) == "submitted", step.request.status
    return elapsed


async def run(n: int, directory: Path) -> None:
    group = SentinelGroup.start(directory, replicas=1)
    metastudio = LocalMetaStudio(review=ReviewPlan(system_delay=3600, admin_delay=3600))
    server = ServerThread(metastudio.app).start()
    try:
        settings = Settings(
            REDIS_SENTINELS=group.sentinel_hosts,
            REDIS_SENTINEL_MASTER=group.master,
            HUAWEICLOUD_SDK_AK=LOCAL_AK,
            HUAWEICLOUD_SDK_SK=LOCAL_SK,
            HUAWEICLOUD_SDK_PROJECT_ID=LOCAL_PROJECT_ID,
            METASTUDIO_ENDPOINT=server.url,
        )
        redis = RedisTarget.from_settings(settings).client()
        client = MetaStudioClient.from_settings(settings)
        policy = PollPolicy(interval=30, cap=300, training_interval=300)
        stores = {
            wanted: ApprovalStore(
                redis,
                PREFIX,
                ttl_seconds=3600,
                allow_self_approval=False,
                replicas=ReplicaWait(wanted, 0.5),
            )
            for wanted in (0, 1)
        }
        trackers = {
            wanted: Tracker(store, client, policy, review_sweep=True)
            for wanted, store in stores.items()
        }
        for wanted in (0, 1):  # warm up: connections, script cache
            for _ in range(10):
                await one_path(stores[wanted], trackers[wanted], metastudio)
        timings: dict[int, list[float]] = {0: [], 1: []}
        for index in range(n):
            wanted = index % 2
            timings[wanted].append(await one_path(stores[wanted], trackers[wanted], metastudio))
        await client.aclose()
        await redis.aclose()
    finally:
        server.stop()
        group.stop()

    print(f"approve-to-submit path, {n // 2} requests each (decide + claim + POST + record)")
    rows = {}
    for wanted, label in ((0, "no WAIT (MIN_REPLICAS=0)"), (1, "WAIT 1 replica")):
        p50 = percentile(timings[wanted], 0.5) * 1000
        p99 = percentile(timings[wanted], 0.99) * 1000
        mean = statistics.fmean(timings[wanted]) * 1000
        rows[wanted] = (p50, p99)
        print(f"  {label:26s} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  mean {mean:6.2f} ms")
    print(
        f"  ratio WAIT / no WAIT:      p50 {rows[1][0] / rows[0][0]:.2f}x  "
        f"p99 {rows[1][1] / rows[0][1]:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-") as directory:
        asyncio.run(run(args.n, Path(directory)))


if __name__ == "__main__":
    main()
