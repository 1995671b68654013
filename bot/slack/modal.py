"""The submit modal: its view, the job options it loads, and reading a view_submission back.

Block ids and action ids are stable constants (equal to the submit field names) so a
submission's ``view.state.values`` maps straight back to fields, and validation errors map
straight back to blocks. The validation rules are the command parser's, not a copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.i18n import _
from bot.metastudio.models import (
    CommitJobRequest,
    JobTag,
    Language,
    Sex,
    TrainingJob,
    state_words,
)
from bot.slack import messages
from bot.slack.commands import (
    FIELD_RULES,
    SUBMIT_KEYS,
    Problem,
    Submit,
    validate_fields,
    validate_job_id,
    without_invisible,
)

CALLBACK_ID = "voice_submit"
BLOCK_JOB = "job_id"
ACTION_JOB = "job_id"
BLOCK_DRY_RUN = "dry_run"
ACTION_DRY_RUN = "dry_run"
DRY_RUN_VALUE = "dry_run"
# One block per submit field; the block id and the action id are both the field name.
FIELD_BLOCK_IDS: dict[str, str] = {name: name for name in SUBMIT_KEYS}

MAX_STATIC_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_PRIVATE_METADATA = 3000

_SELECT_FIELDS: dict[str, Sequence[str]] = {
    "sex": [m.value for m in Sex],
    "language": [m.value for m in Language],
    "tag": [m.value for m in JobTag],
}
_MULTILINE = frozenset(n for n, rule in FIELD_RULES.items() if rule.multiline)

SubmitFromModal = Submit


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": _plain(messages.truncate(text, MAX_OPTION_TEXT)), "value": value}


def job_option_label(job_id: str, voice_name: str | None, state_words: str | None) -> str:
    """ "voice_name (job_id) · state", shortened to 75 characters keeping the job id whole."""
    ident = f" ({job_id})"
    state = f" · {state_words}" if state_words else ""
    name = voice_name or _("unnamed")
    room = MAX_OPTION_TEXT - len(ident) - len(state)
    if room < 8:
        state = ""
        room = MAX_OPTION_TEXT - len(ident)
    if room < 4:
        return messages.truncate(job_id, MAX_OPTION_TEXT)
    return messages.truncate(name, room) + ident + state


def job_options(jobs: Sequence[TrainingJob], query: str = "") -> list[dict[str, Any]]:
    """Options for a block_suggestion reply, filtered by ``query``, at most 100."""
    needle = query.strip().lower()
    options: list[dict[str, Any]] = []
    for job in jobs:
        if (
            needle
            and needle not in job.job_id.lower()
            and needle not in (job.voice_name or "").lower()
        ):
            continue
        label = job_option_label(job.job_id, job.voice_name, state_words(job.state))
        options.append(_option(job.job_id, label))
        if len(options) == MAX_STATIC_OPTIONS:
            break
    return options


def _input(
    name: str, element: dict[str, Any], *, optional: bool, hint: str | None = None
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": FIELD_BLOCK_IDS.get(name, name),
        "label": _plain(_(messages.MODAL_LABELS[name])),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint)
    return block


def _job_block(
    job_choices: Sequence[tuple[str, str]] | None, initial_job: str | None
) -> dict[str, Any]:
    element: dict[str, Any]
    if job_choices:
        options = [_option(job_id, label) for job_id, label in job_choices[:MAX_STATIC_OPTIONS]]
        element = {"type": "static_select", "action_id": ACTION_JOB, "options": options}
        chosen = next((o for o in options if o["value"] == initial_job), None)
        if chosen is not None:
            element["initial_option"] = chosen
    else:
        # Options load from MetaStudio through block_suggestion, so the 3 s budget of
        # views.open is not spent listing jobs.
        element = {"type": "external_select", "action_id": ACTION_JOB, "min_query_length": 0}
        if initial_job:
            element["initial_option"] = _option(initial_job, initial_job)
    element["placeholder"] = _plain(_(messages.MODAL_JOB_PLACEHOLDER))
    return {
        "type": "input",
        "block_id": BLOCK_JOB,
        "label": _plain(_(messages.MODAL_LABELS["job_id"])),
        "hint": _plain(_(messages.MODAL_HINTS["job_id"])),
        "element": element,
    }


def _select_block(name: str, initial: str | None) -> dict[str, Any]:
    words = messages.MODAL_OPTION_WORDS
    options = [_option(v, _(words[v]) if v in words else v) for v in _SELECT_FIELDS[name]]
    element: dict[str, Any] = {"type": "static_select", "action_id": name, "options": options}
    chosen = next((o for o in options if o["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return _input(name, element, optional=True)


def _text_block(name: str, initial: str | None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": name,
        "max_length": FIELD_RULES[name].max_length,
    }
    if name in _MULTILINE:
        element["multiline"] = True
    if initial:
        element["initial_value"] = initial
    hint = messages.MODAL_HINTS.get(name)
    return _input(name, element, optional=name != "voice_name", hint=_(hint) if hint else None)


def submit_modal(
    job_choices: Sequence[tuple[str, str]] | None,
    *,
    private_metadata: str,
    initial: CommitJobRequest | None = None,
    initial_job: str | None = None,
    dry_run: bool = False,
    submit_label: str = messages.MODAL_SUBMIT,
) -> dict[str, Any]:
    """The submit modal. ``job_choices`` are ``(job_id, label)`` pairs for a static select;
    ``None`` (or empty) gives an external select whose options come from block_suggestion.
    ``submit_label`` is ``messages.MODAL_SUBMIT_DIRECT`` where no approval is needed (an
    English source string, translated here; at most 24 characters)."""
    if len(private_metadata) > MAX_PRIVATE_METADATA:
        raise ValueError(f"private_metadata is longer than {MAX_PRIVATE_METADATA} characters")
    given = initial.model_dump(mode="json", exclude_none=True) if initial else {}
    blocks: list[dict[str, Any]] = [_job_block(job_choices, initial_job)]
    for name in SUBMIT_KEYS:
        if name in _SELECT_FIELDS:
            blocks.append(_select_block(name, given.get(name)))
        else:
            blocks.append(_text_block(name, given.get(name)))
    dry_run_option = _option(DRY_RUN_VALUE, _(messages.MODAL_DRY_RUN_OPTION))
    checkbox: dict[str, Any] = {
        "type": "checkboxes",
        "action_id": ACTION_DRY_RUN,
        "options": [dry_run_option],
    }
    if dry_run:
        checkbox["initial_options"] = [dry_run_option]
    blocks.append(
        {
            "type": "input",
            "block_id": BLOCK_DRY_RUN,
            "label": _plain(_(messages.MODAL_LABELS["dry_run"])),
            "element": checkbox,
            "optional": True,
        }
    )
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": _plain(_(messages.MODAL_TITLE)),
        "submit": _plain(_(submit_label)),
        "close": _plain(_(messages.MODAL_CLOSE)),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def _entry(state_values: Mapping[str, Any], block_id: str, action_id: str) -> Mapping[str, Any]:
    block = state_values.get(block_id)
    entry = block.get(action_id) if isinstance(block, Mapping) else None
    return entry if isinstance(entry, Mapping) else {}


def _chosen_value(entry: Mapping[str, Any]) -> str | None:
    option = entry.get("selected_option")
    if isinstance(option, Mapping):
        value = option.get("value")
        return value if isinstance(value, str) else None
    value = entry.get("value")
    return value if isinstance(value, str) else None


def chosen_job(state_values: Mapping[str, Any]) -> str | None:
    """The job picked in a submission, as sent, before any validation."""
    return _chosen_value(_entry(state_values, BLOCK_JOB, ACTION_JOB))


def parse_submission(state_values: Mapping[str, Any]) -> Submit | dict[str, str]:
    """A ``view.state.values`` into a ``Submit``, or ``{block_id: error}`` for
    ``{"response_action": "errors", "errors": ...}``."""
    errors: dict[str, str] = {}
    job = _chosen_value(_entry(state_values, BLOCK_JOB, ACTION_JOB))
    job_id: str | None = None
    if job is None or not job.strip():
        errors[BLOCK_JOB] = messages.modal_job_required()
    else:
        checked = validate_job_id(job)
        if isinstance(checked, Problem):
            errors[BLOCK_JOB] = plain_error(checked.message)
        else:
            job_id = checked
    fields: dict[str, str] = {}
    for name in SUBMIT_KEYS:
        value = _chosen_value(_entry(state_values, FIELD_BLOCK_IDS[name], name))
        # An optional input left empty arrives as null; whitespace only means the same.
        if value is not None and value.strip():
            fields[name] = value
    validated = validate_fields(fields)
    if isinstance(validated, list):
        for problem in validated:
            block_id = FIELD_BLOCK_IDS.get(problem.field or "", BLOCK_JOB)
            errors.setdefault(block_id, plain_error(problem.message))
    if errors or job_id is None or isinstance(validated, list):
        return errors
    selected = _entry(state_values, BLOCK_DRY_RUN, ACTION_DRY_RUN).get("selected_options")
    dry_run = isinstance(selected, list) and any(
        isinstance(o, Mapping) and o.get("value") == DRY_RUN_VALUE for o in selected
    )
    return Submit(job_id=job_id, request=validated, dry_run=dry_run)


def plain_error(message: str) -> str:
    """Modal field errors are shown as plain text: mrkdwn marks and escapes come off."""
    plain = message.replace("`", "").replace("*", "")
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- reject reason ------------------------------------------------------------------------

REJECT_CALLBACK_ID = "approval_reject_reason"
BLOCK_REJECT_REASON = "reason"
ACTION_REJECT_REASON = "reason"
MAX_REJECT_REASON = 500


def reject_modal(*, private_metadata: str) -> dict[str, Any]:
    """Asks the approver for an optional reason before rejecting."""
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK_ID,
        "title": _plain(_("Reject request")),
        "submit": _plain(_("Reject")),
        "close": _plain(_(messages.MODAL_CLOSE)),
        "private_metadata": private_metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": BLOCK_REJECT_REASON,
                "optional": True,
                "label": _plain(_("Reason (shown in the thread)")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ACTION_REJECT_REASON,
                    "multiline": True,
                    "max_length": MAX_REJECT_REASON,
                },
            }
        ],
    }


def reject_reason(state_values: Mapping[str, Any]) -> str | None:
    value = _entry(state_values, BLOCK_REJECT_REASON, ACTION_REJECT_REASON).get("value")
    text = without_invisible(str(value)).strip() if value else ""
    return text[:MAX_REJECT_REASON] or None
