"""Run the local MetaStudio standalone: ``python -m sandbox.metastudio --port 8081``."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from sandbox.metastudio.app import LOCAL_AK, LOCAL_PROJECT_ID, LOCAL_SK, LocalMetaStudio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.metastudio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--seed", type=Path, help="seed file (JSON), e.g. config/sandbox-jobs.json")
    parser.add_argument("--ak", default=LOCAL_AK)
    parser.add_argument("--sk", default=LOCAL_SK)
    parser.add_argument("--project-id", default=LOCAL_PROJECT_ID)
    parser.add_argument("--system-delay", type=float, help="seconds of automatic review")
    parser.add_argument("--admin-delay", type=float, help="seconds of manual review")
    parser.add_argument("--train-delay", type=float, help="seconds of training (default: none)")
    parser.add_argument(
        "--lock-seconds",
        type=float,
        default=300.0,
        help="how long an AK stays locked after repeated failed sign-ins",
    )
    args = parser.parse_args(argv)

    ms = LocalMetaStudio({args.ak: args.sk}, args.project_id, lock_seconds=args.lock_seconds)
    seeded = ms.load_seed(args.seed) if args.seed else []
    overrides = {
        key: value
        for key, value in (
            ("system_delay", args.system_delay),
            ("admin_delay", args.admin_delay),
            ("train_delay", args.train_delay),
        )
        if value is not None
    }
    if overrides:
        ms.review = ms.review.model_copy(update=overrides)

    url = f"http://{args.host}:{args.port}"
    # These are the sandbox's own local credentials, printed so a local bot can use them.
    print(f"local MetaStudio on {url}  ({len(seeded)} seeded jobs)")
    print(f"  METASTUDIO_ENDPOINT={url}")
    print(f"  HUAWEICLOUD_SDK_AK={args.ak}")
    print(f"  HUAWEICLOUD_SDK_SK={args.sk}")
    print(f"  HUAWEICLOUD_SDK_PROJECT_ID={args.project_id}")
    print(f"  review: {ms.review.model_dump()}")
    for job_id in seeded:
        job = ms.job(job_id)
        print(f"  job {job_id}  {job['state']:<14} {job.get('voice_name', '')}")
    print(f"  admin: {url}/_sandbox/stats", flush=True)
    uvicorn.run(ms.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
