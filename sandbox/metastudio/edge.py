"""The ASGI layer in front of the routes: request ids, recording, the gateway check, faults.

Everything under ``/v1/`` goes through the gateway and then fault injection; the admin
routes (``/_sandbox/``) and anything else mounted (IAM) are never faulted or signed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.metastudio import errors
from sandbox.metastudio.faults import Fault, FaultInjector
from sandbox.metastudio.gateway import (
    SECRET_HEADERS,
    Gateway,
    ReceivedRequest,
    decode_headers,
)

ADMIN_PREFIX = "/_sandbox"
API_PREFIX = "/v1/"
# Request bodies on these paths carry passwords; they are kept in memory for tests but
# never served back over the admin endpoint.
SECRET_BODY_PREFIXES = ("/v3/auth",)


@dataclass(frozen=True, slots=True, repr=False)
class RecordedRequest:
    seq: int
    time: float
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    status: int
    fault: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def __repr__(self) -> str:
        return f"RecordedRequest(#{self.seq} {self.method} {self.path} -> {self.status})"

    def to_json(self) -> dict[str, Any]:
        headers = {k: ("***" if k in SECRET_HEADERS else v) for k, v in self.headers.items()}
        secret_body = self.path.startswith(SECRET_BODY_PREFIXES)
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": headers,
            "body": "***" if secret_body else self.body.decode("utf-8", errors="replace"),
            "status": self.status,
            "fault": self.fault,
        }


class Recorder:
    """The last ``maxlen`` requests, numbered from 0 in arrival-completion order."""

    def __init__(self, maxlen: int = 50_000) -> None:
        self._lock = threading.Lock()
        self.requests: deque[RecordedRequest] = deque(maxlen=maxlen)
        self.total = 0

    def add(self, **fields: Any) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(seq=self.total, time=time.time(), **fields))
            self.total += 1

    def since(self, seq: int) -> tuple[list[RecordedRequest], int]:
        with self._lock:
            return [r for r in self.requests if r.seq >= seq], self.total


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _discard(message: Message) -> None:
    return None


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


async def _until_disconnect(receive: Receive, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            while (await receive())["type"] != "http.disconnect":
                pass


class Edge:
    """ASGI middleware; construct through Starlette's ``Middleware(Edge, ...)``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        gateway: Gateway,
        faults: FaultInjector,
        recorder: Recorder,
        counters: Counter[str],
    ) -> None:
        self.app = app
        self.gateway = gateway
        self.faults = faults
        self.recorder = recorder
        self.counters = counters
        # Requests the gateway gave up on but the backend still applies ("late" lost reply).
        self._late: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        body = await _read_body(receive)
        replay = _replay(body, receive)
        request_id = uuid.uuid4().hex.encode("ascii")
        status = 0
        fault: Fault | None = None
        recorded = False
        headers = decode_headers(scope["headers"])

        def record() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            self.recorder.add(
                method=scope["method"],
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
                status=status,
                fault=fault.value if fault else None,
            )

        def mark(decided: Fault | None) -> None:
            nonlocal fault
            fault = decided

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id)]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Recorded before the last byte leaves, so a client that has its answer
                # always finds its request in ``requests``.
                record()
            await send(message)

        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            recorded = True  # admin traffic is not the API's: never recorded
            await self.app(scope, replay, send_with_id)
            return
        try:
            if path.startswith(API_PREFIX):
                await self._api(scope, receive, replay, send_with_id, headers, body, mark)
            else:
                await self.app(scope, replay, send_with_id)
        finally:
            if not recorded:
                record()

    async def _apply_later(self, scope: Scope, body: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.app(scope, _replay(body, _disconnected), _discard)

    async def _api(
        self,
        scope: Scope,
        receive: Receive,
        replay: Receive,
        send: Send,
        headers: Mapping[str, str],
        body: bytes,
        mark: Callable[[Fault | None], None],
    ) -> None:
        async def answer(error: errors.ApiError) -> None:
            response = JSONResponse(error.body(), error.status, headers=error.headers)
            await response(scope, replay, send)

        async def answer_fault(error: errors.ApiError) -> None:
            if self.faults.config.error_body == "html":
                page = HTMLResponse(
                    errors.proxy_page(error.status), error.status, headers=error.headers
                )
                await page(scope, replay, send)
            else:
                await answer(error)

        received = ReceivedRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path") or scope["path"].encode("utf-8"),
            raw_query=scope.get("query_string", b""),
            headers=headers,
            body=body,
        )
        try:
            self.gateway.check(received)
        except errors.ApiError as exc:
            self.counters[f"rejected:{exc.code}"] += 1
            await answer(exc)
            return

        latency, fault = self.faults.decide(scope["method"], scope["path"])
        mark(fault)
        if latency:
            await asyncio.sleep(latency)
        if fault is Fault.THROTTLE:
            await answer(errors.throttled())
        elif fault is Fault.ERROR:
            await answer_fault(errors.internal_error())
        elif fault is Fault.LOST_REPLY:
            config = self.faults.config
            if config.lost_reply_mode == "bad_gateway":
                await self.app(scope, replay, _discard)
                await answer_fault(errors.bad_gateway())
            elif config.lost_reply_mode == "late":
                await answer_fault(errors.bad_gateway())
                task = asyncio.create_task(self._apply_later(scope, body, config.lost_reply_delay))
                self._late.add(task)
                task.add_done_callback(self._late.discard)
            else:
                held: list[Message] = []

                async def hold(message: Message) -> None:
                    held.append(message)

                await self.app(scope, replay, hold)
                await _until_disconnect(receive, config.lost_reply_delay)
                for message in held:
                    await send(message)
        else:
            await self.app(scope, replay, send)
