"""The language the bot speaks right now, and its gettext catalogs.

Message ids are the English source strings; ``bot/locale/zh/LC_MESSAGES/voicebot.po`` holds
the Simplified Chinese, compiled to ``voicebot.mo`` beside it (``scripts/i18n`` extracts,
updates and compiles with Babel; the bot reads the ``.mo`` with the standard library only).

Who hears a sentence decides its language, and the code that knows the audience says so:

    with speaking(language_of_locale(user_locale)):
        text = messages.usage_text(...)

A reply seen by one user follows that user's Slack locale; a post in a channel follows the
channel's language (``bot.policies``). Builders in ``bot.slack`` never pick a language
themselves: they translate with ``_``/``ngettext`` in whatever language is current. A string
missing from a catalog falls back to the English source.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from importlib import resources
from typing import Final, Literal, TypeGuard, get_args

Language = Literal["en", "zh"]
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)
DEFAULT: Final[Language] = "en"
DOMAIN: Final = "voicebot"

# The Slack locales that get the Chinese catalog; every other locale reads English.
_CHINESE_LOCALES: Final = frozenset({"zh-cn", "zh-tw", "zh-hk"})

_current: ContextVar[Language] = ContextVar("voicebot_language", default=DEFAULT)


def is_language(value: object) -> TypeGuard[Language]:
    return value in LANGUAGES


def language_of_locale(locale: str | None) -> Language:
    """The bot's language for a Slack locale (``zh-CN`` -> ``zh``; anything else -> ``en``)."""
    if locale and locale.replace("_", "-").lower() in _CHINESE_LOCALES:
        return "zh"
    return "en"


def current() -> Language:
    return _current.get()


@contextmanager
def speaking(language: Language) -> Iterator[Language]:
    """Speak ``language`` inside the block (nested blocks override, then restore)."""
    token = _current.set(language)
    try:
        yield language
    finally:
        _current.reset(token)


def speak_from_now(language: Language) -> None:
    """Speak ``language`` for the rest of the current task (and the tasks it starts).

    For a Bolt middleware: Bolt runs the listener after the middleware chain has returned,
    in the same task, so a ``with`` block around ``next()`` would end too early. Each
    incoming request is dispatched in a task of its own, or after its own middleware has
    set the language again."""
    _current.set(language)


@cache
def _catalog(language: Language) -> _gettext.NullTranslations:
    if language == "en":
        return _gettext.NullTranslations()
    path = resources.files("bot") / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as handle:
            return _gettext.GNUTranslations(handle)
    except FileNotFoundError:
        return _gettext.NullTranslations()


def gettext(message: str) -> str:
    """``message`` (an English source string) in the current language."""
    return _catalog(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the current language."""
    return _catalog(_current.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in the current language, told apart from the same English in ``context``."""
    return _catalog(_current.get()).pgettext(context, message)


def gettext_noop(message: str) -> str:
    """Marks ``message`` for extraction where it is defined; translate it where it is shown."""
    return message


_ = gettext
N_ = gettext_noop
