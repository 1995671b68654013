"""Compare the AK/SK signer's throughput with the official huaweicloudsdkcore signer.

Signs a commit request shaped like reference vector B (POST, JSON body, X-App-UserId)
N times with ``AKSKAuth.auth_flow`` on an ``httpx.Request``, with the pure ``sign``, and
with the official ``Signer`` on an ``SdkRequest``, all in one run, and prints requests per
second for each and the ratio ours/official. Every request is built before timing starts,
so only signing is measured; none carries an X-Sdk-Date, as in normal use.

    .venv/bin/python -m bench.bench_signer [-n 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.metastudio.signing import AKSKAuth, sdk_date_now, sign

AK = "HWTESTAK0000000000000"
SK = "HwTestSecretKey0000000000000000000000000"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
HOST = "metastudio.cn-north-4.myhuaweicloud.com"
PATH = f"/v1/{PROJECT_ID}/voice-training-manage/user/jobs/26f06524-4f75-4b3a-a853-b649a21aaf66"
BODY = (
    b'{"tag": "CUSTOMER", "description": "slack bot test", "sex": "FEMALE", '
    b'"voice_name": "demo_voice_01", "language": "CN", "phone": "13800000000", '
    b'"app_user_id": "U012ABCDEF"}'
)
HEADERS = {
    "Content-Type": "application/json",
    "X-Project-Id": PROJECT_ID,
    "X-App-UserId": "U012ABCDEF",
}


@dataclass(frozen=True)
class _Credentials:
    ak: str
    sk: str


Setup = Callable[[int], Sequence[Any]]
Run = Callable[[Any], object]


def _bench_auth_flow() -> tuple[Setup, Run]:
    auth = AKSKAuth(AK, SK)
    url = f"https://{HOST}{PATH}"

    def setup(count: int) -> list[httpx.Request]:
        return [httpx.Request("POST", url, headers=HEADERS, content=BODY) for _ in range(count)]

    def run(request: httpx.Request) -> None:
        for _ in auth.auth_flow(request):
            pass

    return setup, run


def _bench_pure_sign() -> tuple[Setup, Run]:
    sk = SK.encode()

    def setup(count: int) -> list[dict[str, str]]:
        return [{**HEADERS, "Host": HOST} for _ in range(count)]

    def run(headers: dict[str, str]) -> None:
        headers["X-Sdk-Date"] = sdk_date_now()
        headers["Authorization"] = sign(AK, sk, "POST", PATH, (), headers, BODY)

    return setup, run


def _bench_official() -> tuple[Setup, Run] | None:
    try:
        from huaweicloudsdkcore.sdk_request import SdkRequest
        from huaweicloudsdkcore.signer.signer import Signer
    except ImportError:
        return None
    signer = Signer(_Credentials(AK, SK))

    def setup(count: int) -> list[Any]:
        return [
            SdkRequest(
                method="POST",
                schema="https",
                host=HOST,
                resource_path=PATH,
                query_params=[],
                header_params=dict(HEADERS),
                body=BODY,
            )
            for _ in range(count)
        ]

    return setup, signer.sign


def _seconds_per_call(setup: Setup, run: Run, n: int) -> float:
    items = setup(n)
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for item in items:
            run(item)
        return (time.perf_counter() - start) / n
    finally:
        gc.enable()


def measure(n: int, repeat: int) -> dict[str, float]:
    """Best seconds per call for each signer; rounds alternate between the signers so a
    noisy neighbour on a shared machine slows all of them rather than one."""
    cases = {"auth_flow": _bench_auth_flow(), "sign": _bench_pure_sign()}
    official = _bench_official()
    if official is not None:
        cases["official"] = official
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeat):
        for name, (setup, run) in cases.items():
            best[name] = min(best[name], _seconds_per_call(setup, run, n))
    return best


def _check_equivalence() -> None:
    """Refuse to report speed for a signer that disagrees with the official one."""
    try:
        from huaweicloudsdkcore.sdk_request import SdkRequest
        from huaweicloudsdkcore.signer.signer import Signer
    except ImportError:
        return
    date = "20250101T000000Z"
    request = httpx.Request(
        "POST", f"https://{HOST}{PATH}", headers={**HEADERS, "X-Sdk-Date": date}, content=BODY
    )
    for _ in AKSKAuth(AK, SK).auth_flow(request):
        pass
    official = SdkRequest(
        method="POST",
        schema="https",
        host=HOST,
        resource_path=PATH,
        query_params=[],
        header_params={**HEADERS, "X-Sdk-Date": date},
        body=BODY,
    )
    Signer(_Credentials(AK, SK)).sign(official)
    if request.headers["Authorization"] != official.header_params["Authorization"]:
        raise SystemExit("signers disagree; not benchmarking")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="requests per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best is reported")
    args = parser.parse_args(argv)

    _check_equivalence()
    best = measure(args.n, args.repeat)

    print(f"signing a commit request, n={args.n}, best of {args.repeat}")
    print(f"  AKSKAuth.auth_flow   {1 / best['auth_flow']:>10,.0f} req/s")
    print(f"  signing.sign         {1 / best['sign']:>10,.0f} req/s")
    official = best.get("official")
    if official is None:
        print("  official Signer      not installed (pip install huaweicloudsdkcore)")
        return
    print(f"  official Signer      {1 / official:>10,.0f} req/s")
    print(f"  ratio auth_flow/official  {official / best['auth_flow']:.2f}x")
    print(f"  ratio sign/official       {official / best['sign']:.2f}x")


if __name__ == "__main__":
    main()
