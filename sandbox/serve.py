"""Run an ASGI app under uvicorn on a background thread, on an ephemeral loopback port.

Tests, benchmarks and the local run use this to put the sandboxes (and the bot's own web
app) on real sockets without tying them to the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp


class _PromptServer(uvicorn.Server):
    """A uvicorn server that stops as soon as it is told to, not at its next 0.1 s tick:
    tests start and stop servers by the hundred."""

    def __init__(self, config: uvicorn.Config, settle: float) -> None:
        super().__init__(config)
        self._wake: asyncio.Event | None = None
        self._settle = settle

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown with its fixed 0.1 s pause made ``settle`` and its 0.1 s polls
        made 5 ms: the same steps (stop accepting, ask each connection to close, let running
        requests finish for up to ``timeout_graceful_shutdown``, then cancel them; then the
        lifespan's shutdown)."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        if self._settle > 0:
            await asyncio.sleep(self._settle)
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                # uvicorn keeps plain sets of connections and tasks, with no event to wait on.
                while (state.connections or state.tasks) and not self.force_exit:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                for server in self.servers:
                    await server.wait_closed()
        except TimeoutError:
            for task in state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()


class ServerThread:
    """``with ServerThread(app) as server: httpx.get(server.url + "/healthz")``."""

    def __init__(
        self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, settle: float = 0.1
    ) -> None:
        """``settle``: how long a stop lets work the app runs apart from its requests go on
        before the app's lifespan ends (the bot's Bolt listeners run after their ack, as tasks
        of their own); uvicorn's own pause is 0.1 s. The stand-ins run no such work, and tests
        stop them with 0."""
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it Nagle plus delayed ACKs add ~40 ms to every reply.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        # A request still running at stop (a handler stuck on a peer that went away) is
        # cancelled after a second rather than held until the thread join gives up.
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = _PromptServer(config, settle)
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{self.port}", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        finally:
            self.loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} failed to start")
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(self._server.wake)
        self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
