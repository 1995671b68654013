"""``python -m sandbox``: run everything locally (Redis, the local Slack with its playground,
the local MetaStudio, the web app and the worker), on the settings in the environment.

Needs no credentials: the local stand-ins bring their own. With real Slack and MetaStudio
credentials set, it says what to run instead and starts nothing.
"""

from __future__ import annotations

import argparse
import sys

from bot.__main__ import configure_logging
from bot.settings import ConfigError, load_settings
from sandbox.dev import run_dev


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        run_dev(load_settings())
    except ConfigError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
