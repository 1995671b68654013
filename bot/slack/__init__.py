"""The Slack edge: command parsing, the submit modal, Block Kit builders and user-facing text.

The modules re-exported here are pure (no I/O), so they are safe on the 3-second ack path.
"""

from bot.slack.blocks import ApprovalCard, OutgoingMessage
from bot.slack.commands import (
    ROLE_NAMES,
    Audit,
    Command,
    Grant,
    Help,
    ParseFailure,
    Problem,
    Revoke,
    Roles,
    Status,
    Submit,
    SubmitForm,
    parse,
)

__all__ = [
    "ROLE_NAMES",
    "ApprovalCard",
    "Audit",
    "Command",
    "Grant",
    "Help",
    "OutgoingMessage",
    "ParseFailure",
    "Problem",
    "Revoke",
    "Roles",
    "Status",
    "Submit",
    "SubmitForm",
    "parse",
]
