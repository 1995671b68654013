"""The Chinese catalog: complete, in step with the code, compiled, and safe to format and post.

``scripts/i18n`` extracts ``bot/locale/voicebot.pot`` from the code, updates
``bot/locale/zh/LC_MESSAGES/voicebot.po`` and compiles ``voicebot.mo``; the bot reads the .mo.
A translation is shown wherever the bot speaks Chinese, so one that drops a placeholder raises
KeyError in ``.format``, and one that drops a backtick or a ``<@U…>`` breaks the message.
"""

from __future__ import annotations

import fnmatch
import gettext
import re
import string
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot import i18n

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "bot" / "locale"
POT = LOCALE / "voicebot.pot"
PO = LOCALE / "zh" / "LC_MESSAGES" / "voicebot.po"
MO = LOCALE / "zh" / "LC_MESSAGES" / "voicebot.mo"

# <@U…>, <#C…>, <!here>, <url|label>: left of the bar is Slack's, the label is text.
_LINK = re.compile(r"<([^<>|]*)(?:\|[^<>]*)?>")
_CODE = re.compile(r"`[^`]*`")
_ENTITY = re.compile(r"&(?:lt|gt|amp);")

Field = tuple[str, str | None, str]


@dataclass(frozen=True)
class Entry:
    context: str | None
    english: tuple[str, ...]  # the singular, and the plural of an ngettext message
    forms: tuple[str, ...]  # its translation: one form, Chinese having one for every n
    fuzzy: bool

    @property
    def plural(self) -> bool:
        return len(self.english) > 1

    @property
    def translated(self) -> bool:
        return all(self.forms) and not self.fuzzy

    def __str__(self) -> str:
        return f"{self.english[0]!r}" + (f" [{self.context}]" if self.context else "")


def _entries(path: Path) -> list[Entry]:
    return [
        Entry(
            context=message.context,
            english=tuple(message.id) if isinstance(message.id, tuple | list) else (message.id,),
            forms=(
                tuple(message.string)
                if isinstance(message.string, tuple | list)
                else (message.string or "",)
            ),
            fuzzy=message.fuzzy,
        )
        for message in _catalog(path)
        if message.id
    ]


def _catalog(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def _translated() -> list[Entry]:
    return [entry for entry in _entries(PO) if entry.translated]


def _fields(text: str) -> frozenset[Field] | None:
    """The str.format fields of ``text`` (name, conversion, spec); None if it is not one."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return None
    return frozenset((name, conv, spec or "") for _, name, spec, conv in parsed if name is not None)


def _listing(lines: list[str], limit: int = 25) -> str:
    shown = "\n  ".join(lines[:limit])
    more = f"\n  … and {len(lines) - limit} more" if len(lines) > limit else ""
    return f"{len(lines)}:\n  {shown}{more}"


def test_the_catalogs_follow_the_code() -> None:
    # Re-extracts into a temporary directory, and compares the template with it, the catalog
    # with the template, and the compiled catalog with the catalog.
    result = subprocess.run(  # noqa: S603 - our own script
        [str(ROOT / "scripts" / "i18n"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_the_chinese_catalog_has_the_template_s_messages_and_no_other() -> None:
    template = {(e.context, e.english) for e in _entries(POT)}
    chinese = {(e.context, e.english) for e in _entries(PO)}
    assert not template - chinese, f"missing from the .po: {sorted(template - chinese)}"
    assert not chinese - template, f"no longer in the code: {sorted(chinese - template)}"


def test_the_chinese_catalog_names_its_language_plural_and_glossary() -> None:
    catalog = _catalog(PO)
    headers = dict(catalog.mime_headers)
    assert headers["Language"] == "zh_CN"
    assert headers["Plural-Forms"] == "nplurals=1; plural=0;"
    # A fuzzy header makes the compilers skip the whole catalog.
    assert not catalog.fuzzy
    for line in ("Glossary", "approval -> 审批", "training job / job -> 训练任务", "review "):
        assert f"\n# {line}" in catalog.header_comment, line


def test_every_message_has_a_chinese_translation() -> None:
    entries = _entries(PO)
    fuzzy = [str(entry) for entry in entries if entry.fuzzy]
    missing = [str(entry) for entry in entries if not all(entry.forms)]
    assert not fuzzy, f"fuzzy translations {_listing(fuzzy)}"
    assert not missing, f"untranslated messages {_listing(missing)}"


def test_translations_keep_the_placeholders() -> None:
    wrong = []
    for entry in _translated():
        english = [_fields(text) for text in entry.english]
        for form in entry.forms:
            if None in english:
                # Not a format string: its braces are text, and stay as they are.
                same = all(form.count(c) == entry.english[0].count(c) for c in "{}")
            else:
                # One Chinese form stands for every n: it has the fields of both English forms.
                same = _fields(form) == frozenset().union(*(f or frozenset() for f in english))
            if not same:
                wrong.append(f"{entry} -> {form!r}")
    assert not wrong, (
        f"translations whose {{placeholders}} differ from the English {_listing(wrong)}"
    )


def test_translations_keep_the_mrkdwn() -> None:
    def angles(text: str) -> int:
        return text.count("<") + text.count(">")

    wrong = []
    for entry in _translated():
        english = entry.english[0]
        for form in entry.forms:
            differs = [
                what
                for what, same in (
                    ("<…> targets", sorted(_LINK.findall(form)) == sorted(_LINK.findall(english))),
                    ("`code` spans", sorted(_CODE.findall(form)) == sorted(_CODE.findall(english))),
                    ("backtick parity", form.count("`") % 2 == english.count("`") % 2),
                    (
                        "&lt; &gt; &amp;",
                        sorted(_ENTITY.findall(form)) == sorted(_ENTITY.findall(english)),
                    ),
                    ("bare < or >", angles(form) == angles(english)),
                )
                if not same
            ]
            if differs:
                wrong.append(f"{entry} -> {form!r}: {', '.join(differs)}")
    assert not wrong, f"translations whose mrkdwn differs from the English {_listing(wrong)}"


def test_the_compiled_catalog_is_the_po() -> None:
    expected: dict[str | tuple[str, int], str] = {}
    for entry in _translated():
        msgid = f"{entry.context}\x04{entry.english[0]}" if entry.context else entry.english[0]
        if entry.plural:
            expected.update({(msgid, index): form for index, form in enumerate(entry.forms)})
        else:
            expected[msgid] = entry.forms[0]
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    assert compiled.info()["plural-forms"] == "nplurals=1; plural=0;"
    # Only the translated messages: one left out falls back to the English, plurals and all.
    messages = {k: v for k, v in vars(compiled)["_catalog"].items() if k != ""}
    assert messages == expected


def test_the_bot_falls_back_to_the_english() -> None:
    with i18n.speaking("zh"):
        assert i18n._("A sentence no catalog has.") == "A sentence no catalog has."
        # A plural the catalog lacks keeps the English plural rule.
        assert [i18n.ngettext("{n} thing we never say", "{n} things", n) for n in (1, 2)] == [
            "{n} thing we never say",
            "{n} things",
        ]
    with i18n.speaking("en"):
        assert i18n._("Approve") == "Approve"


def test_the_bot_speaks_chinese_from_the_catalog() -> None:
    entries = {(entry.context, entry.english[0]): entry for entry in _entries(PO)}
    approve = entries.get((None, "Approve"))
    assert approve is not None, "the approval card's button is no longer 'Approve'"
    assert re.search(r"[\u4e00-\u9fff]", approve.forms[0]), "'Approve' has no Chinese yet"
    with i18n.speaking("zh"):
        assert i18n._("Approve") == approve.forms[0]
        for entry in entries.values():
            if not entry.translated:
                continue
            if entry.plural:
                singular, plural = entry.english
                said = [i18n.ngettext(singular, plural, n) for n in (1, 5)]
                assert said == [entry.forms[0]] * 2, entry
            elif entry.context:
                assert i18n.pgettext(entry.context, entry.english[0]) == entry.forms[0], entry
            else:
                assert i18n._(entry.english[0]) == entry.forms[0], entry


def test_the_wheel_ships_the_compiled_catalog() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["bot"]
    shipped = MO.relative_to(ROOT / "bot").as_posix()
    assert any(fnmatch.fnmatch(shipped, pattern) for pattern in patterns), patterns


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("zh-CN", "zh"),
        ("zh-TW", "zh"),
        ("zh-HK", "zh"),
        ("zh_CN", "zh"),
        ("en-US", "en"),
        ("ja-JP", "en"),
        ("zh-SG", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_which_slack_locales_read_chinese(locale: str | None, language: str) -> None:
    assert i18n.language_of_locale(locale) == language


# *bold*, _italic_ and `code` spans in mrkdwn, outside any <…> link or mention.
_MARKED = re.compile(r"`[^`\n]+`|\*[^*\n]+\*|(?<!\w)_[^_\n]+_(?!\w)")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def test_mrkdwn_spans_are_set_apart_from_chinese_characters() -> None:
    """Slack formats ``*bold*`` or a `code` span only where it stands apart from the words
    around it, and Chinese has no spaces between words: each span has a space, punctuation
    or a line's end on both sides."""
    wrong = []
    for entry in _translated():
        for form in entry.forms:
            unlinked = _LINK.sub(lambda m: " " * len(m.group()), form)
            for span in _MARKED.finditer(unlinked):
                before = unlinked[span.start() - 1] if span.start() else " "
                after = unlinked[span.end()] if span.end() < len(unlinked) else " "
                if _HAN.match(before) or _HAN.match(after):
                    wrong.append(f"{entry} -> {form!r}: {span.group()!r}")
    assert not wrong, f"mrkdwn spans touching Chinese characters {_listing(wrong)}"
