"""The bot's Lua scripts as package resources, one ``.lua`` file each, and how they are read.

One convention for all of them: constants are rendered into the text when a script is
loaded (``__NAME__`` placeholders); a script's own KEYS and ARGV come first, in the order its
header gives; what auditing needs comes last (the audit stream, and the job index when the
event names one, as the last KEYS; their settings as the last ARGV), as ``bot.audit``
writes it. The approval scripts live with the approval state machine (``bot/approvals/lua``);
the permission scripts here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources


@cache
def source(package: str, name: str) -> str:
    """The text of ``{name}.lua`` in ``package``'s ``lua`` folder (or in ``bot.lua`` itself)."""
    folder = resources.files(package)
    if package != __name__:
        folder = folder.joinpath("lua")
    return folder.joinpath(f"{name}.lua").read_text("utf-8")


def render(text: str, constants: Mapping[str, str]) -> str:
    """``text`` with each ``__NAME__`` replaced by ``constants[NAME]``."""
    for name, value in constants.items():
        text = text.replace(f"__{name}__", value)
    return text
