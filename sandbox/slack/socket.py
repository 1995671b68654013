"""The Socket Mode side of the local Slack: the WebSocket endpoint and envelope delivery.

``apps.connections.open`` hands out ``ws://.../socket?ticket=...``; a client that connects
gets ``hello`` like from Slack, then envelopes, each of which it must ack by ``envelope_id``
within the deadline. Connections live on the server thread's event loop while the driver
delivers from the test's loop, so delivery hops loops with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

JSON = dict[str, Any]


class NoSocketConnection(RuntimeError):
    """Socket Mode delivery was asked for but no client is connected."""


@dataclass
class SocketConnection:
    websocket: WebSocket
    loop: asyncio.AbstractEventLoop
    ticket: str
    pending: dict[str, asyncio.Future[JSON]] = field(default_factory=dict)
    received: list[JSON] = field(default_factory=list)

    async def send_and_wait(self, envelope: JSON, ack_deadline: float) -> JSON | None:
        envelope_id = str(envelope["envelope_id"])
        future: asyncio.Future[JSON] = self.loop.create_future()
        self.pending[envelope_id] = future
        try:
            await self.websocket.send_text(json.dumps(envelope))
            return await asyncio.wait_for(future, ack_deadline)
        except TimeoutError:
            return None
        finally:
            self.pending.pop(envelope_id, None)

    async def send(self, message: JSON) -> None:
        await self.websocket.send_text(json.dumps(message))


class SocketHub:
    """Tickets, live connections and envelope delivery for Socket Mode."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self._lock = threading.Lock()
        self._tickets: set[str] = set()
        self._connections: list[SocketConnection] = []
        self._round_robin = itertools.count()
        self.connections_opened = 0
        self.late_acks: list[JSON] = []

    def issue_url(self, http_base_url: str) -> str:
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        ws_base = "ws" + http_base_url.removeprefix("http").rstrip("/")
        return f"{ws_base}/socket?ticket={ticket}&app_id={self.app_id}"

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    async def endpoint(self, websocket: WebSocket) -> None:
        ticket = websocket.query_params.get("ticket", "")
        with self._lock:
            known = ticket in self._tickets
        if not known:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        connection = SocketConnection(websocket, asyncio.get_running_loop(), ticket)
        with self._lock:
            self._connections.append(connection)
            self.connections_opened += 1
            count = len(self._connections)
        try:
            await connection.send(
                {
                    "type": "hello",
                    "num_connections": count,
                    "debug_info": {
                        "host": "local-slack",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for text in websocket.iter_text():
                self._on_message(connection, text)
        except WebSocketDisconnect:
            pass
        finally:
            with self._lock:
                if connection in self._connections:
                    self._connections.remove(connection)
            for future in connection.pending.values():
                if not future.done():
                    future.set_exception(
                        NoSocketConnection("the Socket Mode client disconnected before acking")
                    )

    def _on_message(self, connection: SocketConnection, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            return
        if not isinstance(message, dict):
            return
        connection.received.append(message)
        envelope_id = message.get("envelope_id")
        future = connection.pending.get(str(envelope_id))
        if future is not None and not future.done():
            future.set_result(message)
        elif envelope_id is not None:
            self.late_acks.append(message)

    def _pick(self) -> SocketConnection:
        with self._lock:
            if not self._connections:
                raise NoSocketConnection("no Socket Mode client is connected to the local Slack")
            index = next(self._round_robin) % len(self._connections)
            return self._connections[index]

    async def deliver(
        self, type_: str, payload: JSON, ack_deadline: float, *, retry_attempt: int | None = None
    ) -> tuple[str, JSON | None]:
        """Send one envelope to one connection; returns its id and the ack, or None on timeout."""
        connection = self._pick()
        envelope: JSON = {
            "envelope_id": str(uuid.uuid4()),
            "type": type_,
            "payload": payload,
            "accepts_response_payload": type_ != "events_api",
        }
        if retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = "timeout"
        outcome = asyncio.run_coroutine_threadsafe(
            connection.send_and_wait(envelope, ack_deadline), connection.loop
        )
        ack = await asyncio.wrap_future(outcome)
        return str(envelope["envelope_id"]), ack

    async def disconnect_all(self, reason: str = "refresh_requested") -> int:
        """Ask every client to reconnect, as Slack does before it recycles a socket."""
        with self._lock:
            connections = list(self._connections)
        message: JSON = {
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "local-slack"},
        }
        for connection in connections:
            sent = asyncio.run_coroutine_threadsafe(connection.send(message), connection.loop)
            await asyncio.wrap_future(sent)
        return len(connections)
