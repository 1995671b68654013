"""Command line: ``python -m bot serve | socket | worker | dev | check-config``.

Settings are read once here; a bad setting ends the process with one line naming the
variable (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from bot.settings import ConfigError, Settings, load_settings


def _configure_logging(verbose: bool) -> None:
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


def _dev(settings: Settings) -> None:
    from bot.dev import run_dev

    run_dev(settings)


def _check_config(settings: Settings) -> None:
    print("settings OK")


COMMANDS = {
    "serve": (_serve, "run the Slack app over HTTP on $PORT (POST /slack/events)"),
    "socket": (_socket, "run the Slack app over Socket Mode (needs SLACK_APP_TOKEN)"),
    "worker": (_worker, "run the review-tracking worker"),
    "dev": (_dev, "run everything locally: Redis, local Slack, local MetaStudio, web, worker"),
    "check-config": (_check_config, "read the settings and report the first problem"),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    runner, _ = COMMANDS[args.command]
    try:
        runner(settings)
    except ConfigError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
