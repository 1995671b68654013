"""Command line: ``python -m bot serve | socket | worker | check-config``.

Settings are read once here; a bad setting, or one the command needs and the environment
lacks, ends the process with one line naming the variable (exit 2), never a traceback.
The local run, against stand-ins that bring their own credentials, is ``python -m sandbox``
(the ``sandbox`` package beside this one, which production never imports).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

from bot.settings import ConfigError, Needs, Settings, load_settings, require


def configure_logging(verbose: bool) -> None:
    """Log lines with time, level and logger; the chattiest libraries only from WARNING."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "httpcore", "uvicorn.access", "slack_bolt.AsyncApp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _serve(settings: Settings) -> None:
    from bot.web import run_http

    run_http(settings)


def _socket(settings: Settings) -> None:
    from bot.web import run_socket_mode

    run_socket_mode(settings)


def _worker(settings: Settings) -> None:
    from bot.worker import run_worker

    run_worker(settings)


def _check_config(settings: Settings) -> None:
    from bot.redis_ha import RedisTarget

    problem = asyncio.run(RedisTarget.from_settings(settings).problem())
    if problem is not None:
        raise ConfigError(problem)
    print("settings OK")


@dataclass(frozen=True)
class Command:
    run: Callable[[Settings], None]
    help: str
    needs: Needs


COMMANDS = {
    "serve": Command(_serve, "run the Slack app over HTTP on $PORT (POST /slack/events)", Needs()),
    "socket": Command(
        _socket,
        "run the Slack app over Socket Mode (needs SLACK_APP_TOKEN)",
        Needs(socket_mode=True),
    ),
    "worker": Command(_worker, "run the review-tracking worker", Needs(slack_requests=False)),
    # The Procfile's pair: serve needs all that the worker needs, and the signing secret.
    "check-config": Command(
        _check_config, "read the settings and report the first problem", Needs()
    ),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    command = COMMANDS[args.command]
    try:
        require(settings, args.command, command.needs)
        command.run(settings)
    except ConfigError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
