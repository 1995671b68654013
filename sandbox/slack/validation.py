"""Block Kit validation for everything the local Slack accepts: messages, ephemerals, views.

Real Slack rejects malformed blocks with ``invalid_blocks``; a fake that accepts them hides
bugs until production. Each block goes through ``slack_sdk.models`` (``Block.parse`` then
``to_dict()``, which runs the SDK's length and shape checks), and the round trip is compared
with what was sent: a field the SDK drops, an element it cannot parse (``None``) or a string
where an object belongs is an error too. The SDK does not count blocks, so the 50-per-message
and 100-per-view limits are checked here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000

# Fields Slack adds to a view it returns; a bot that echoes a stored view back may send them.
_VIEW_RESPONSE_FIELDS = frozenset(
    {
        "id",
        "team_id",
        "state",
        "hash",
        "app_id",
        "bot_id",
        "root_view_id",
        "previous_view_id",
        "app_installed_team_id",
        "submit_disabled",
    }
)


@dataclass
class Verdict:
    """What validation found: ``errors`` reject the payload, ``warnings`` only get recorded."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def decode_json_field(value: Any, name: str, verdict: Verdict) -> Any:
    """Form-encoded calls carry ``blocks``/``view`` as JSON text; JSON calls carry objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            verdict.errors.append(f"{name}: not valid JSON ({exc.msg})")
            return None
    return value


def _compare(sent: Any, canonical: Any, path: str, errors: list[str]) -> None:
    if isinstance(sent, Mapping):
        if canonical is None:
            errors.append(f"{path}: unknown type {sent.get('type')!r}")
            return
        if not isinstance(canonical, Mapping):
            errors.append(f"{path}: not recognised by slack_sdk")
            return
        for key, value in sent.items():
            if key not in canonical:
                errors.append(f"{path}.{key}: unknown or invalid field")
            else:
                _compare(value, canonical[key], f"{path}.{key}", errors)
    elif isinstance(sent, list):
        if not isinstance(canonical, list) or len(canonical) != len(sent):
            errors.append(f"{path}: list not recognised by slack_sdk")
            return
        for index, (item, canon) in enumerate(zip(sent, canonical, strict=True)):
            _compare(item, canon, f"{path}[{index}]", errors)
    elif isinstance(canonical, Mapping):
        errors.append(f"{path}: must be an object, not {type(sent).__name__}")


def check_blocks(blocks: Any, *, limit: int, path: str = "blocks") -> list[str]:
    """Every problem with a list of block dicts, as ``path: reason`` strings."""
    if not isinstance(blocks, list):
        return [f"{path}: must be a list of blocks, not {type(blocks).__name__}"]
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"{path}: {len(blocks)} blocks, at most {limit} allowed")
    for index, block in enumerate(blocks):
        where = f"{path}[{index}]"
        if not isinstance(block, Mapping):
            errors.append(f"{where}: must be an object, not {type(block).__name__}")
            continue
        try:
            parsed = Block.parse(dict(block))
            if parsed is None:
                errors.append(f"{where}: unknown block type {block.get('type')!r}")
                continue
            canonical = parsed.to_dict()
        except (SlackObjectFormationError, TypeError, KeyError, ValueError, AttributeError) as exc:
            errors.append(f"{where}: {exc}")
            continue
        _compare(block, canonical, where, errors)
    return errors


def check_message(
    text: Any, blocks: Any, *, attachments: Any = None, source: str = "message"
) -> Verdict:
    """A chat message or response_url body: text or blocks present, blocks valid, ≤ 50."""
    verdict = Verdict()
    blocks = decode_json_field(blocks, f"{source}: blocks", verdict)
    has_text = isinstance(text, str) and text != ""
    if blocks is not None:
        verdict.errors.extend(
            f"{source}: {error}" for error in check_blocks(blocks, limit=MAX_MESSAGE_BLOCKS)
        )
    if not has_text and not blocks and not attachments:
        verdict.errors.append(f"{source}: no text, blocks or attachments")
    elif blocks and not has_text:
        verdict.warnings.append(
            f"{source}: blocks without top-level text (no notification fallback)"
        )
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        verdict.warnings.append(f"{source}: text of {len(text)} characters will be truncated")
    return verdict


def check_view(view: Any, *, source: str = "view") -> Verdict:
    """A modal or home view: ≤ 100 valid blocks, plus the SDK's own view checks.

    ``View.to_dict()`` enforces title/submit/close ≤ 24 characters, private_metadata ≤ 3000
    and callback_id ≤ 255.
    """
    verdict = Verdict()
    view = decode_json_field(view, f"{source}: view", verdict)
    if view is None:
        if verdict.ok:
            verdict.errors.append(f"{source}: view is required")
        return verdict
    if not isinstance(view, Mapping):
        verdict.errors.append(f"{source}: view must be an object")
        return verdict
    blocks = view.get("blocks")
    verdict.errors.extend(
        f"{source}: {error}" for error in check_blocks(blocks, limit=MAX_VIEW_BLOCKS)
    )
    try:
        canonical = View(**dict(view)).to_dict()
    except (SlackObjectFormationError, TypeError, KeyError, ValueError, AttributeError) as exc:
        message = f"{source}: {exc}"
        if message not in verdict.errors:
            verdict.errors.append(message)
        return verdict
    top_level = {k: v for k, v in view.items() if k != "blocks" and k not in _VIEW_RESPONSE_FIELDS}
    _compare(top_level, canonical, f"{source}: view", verdict.errors)
    return verdict
