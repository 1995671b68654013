"""The HTTP face of the bot: Slack requests, health, readiness and metrics; and the two ways
to run the Slack app (HTTP on ``$PORT``, or Socket Mode; ``socket_mode`` is the reusable
async context manager behind the latter).

Routes: ``POST /slack/events`` (commands, interactivity, options), ``GET /healthz`` (the
process is up), ``GET /readyz`` (Redis answers), ``GET /metrics`` (Prometheus).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from redis.exceptions import RedisError
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.app import build_app
from bot.metrics import CONTENT_TYPE_LATEST
from bot.services import Services, open_services
from bot.settings import ConfigError, Settings

log = logging.getLogger("bot.web")


def build_web(settings: Settings) -> Starlette:
    """The ASGI app; services are opened on startup, in the server's own event loop."""

    @asynccontextmanager
    async def lifespan(web: Starlette) -> AsyncIterator[None]:
        services = await open_services(settings)
        web.state.services = services
        web.state.handler = AsyncSlackRequestHandler(build_app(settings, services))
        try:
            yield
        finally:
            await services.aclose()

    async def events(request: Request) -> Response:
        handler: AsyncSlackRequestHandler = request.app.state.handler
        return await handler.handle(request)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        services: Services = request.app.state.services
        try:
            await asyncio.wait_for(services.redis.ping(), 2.0)
        except (RedisError, OSError):  # OSError: TimeoutError included
            return JSONResponse({"ok": False, "redis": "unavailable"}, status_code=503)
        return JSONResponse({"ok": True, "redis": "ok"})

    async def metrics(request: Request) -> Response:
        services: Services = request.app.state.services
        return PlainTextResponse(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def serve_http(settings: Settings) -> None:
    config = uvicorn.Config(
        build_web(settings),
        host="0.0.0.0",  # noqa: S104 (Slack must reach it)
        port=settings.port,
        log_level="info",
        access_log=False,
    )
    log.info("voicebot listening on :%d (POST /slack/events)", settings.port)
    await uvicorn.Server(config).serve()


def run_http(settings: Settings) -> None:
    asyncio.run(serve_http(settings))


@asynccontextmanager
async def socket_mode(settings: Settings) -> AsyncIterator[AsyncSocketModeHandler]:
    """The bot connected over Socket Mode for the duration of the block, in the caller's loop.

    Services are opened first and closed last, so no envelope is handled without them.
    """
    if settings.slack_app_token is None:
        raise ConfigError("invalid setting SLACK_APP_TOKEN: required for Socket Mode")
    services = await open_services(settings)
    try:
        app = build_app(settings, services)
        handler = AsyncSocketModeHandler(app, settings.slack_app_token.get_secret_value())
        await handler.connect_async()  # type: ignore[no-untyped-call]
        try:
            yield handler
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
    finally:
        await services.aclose()


async def serve_socket_mode(settings: Settings) -> None:
    async with socket_mode(settings):
        log.info("voicebot connected over Socket Mode")
        await asyncio.Event().wait()


def run_socket_mode(settings: Settings) -> None:
    asyncio.run(serve_socket_mode(settings))
