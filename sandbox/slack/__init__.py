"""A local Slack: Web API, response_urls and Socket Mode on loopback, and a driver that sends
the bot signed slash commands and interactions the way Slack does."""

from __future__ import annotations

from sandbox.slack.driver import DeliveryResult, SlackDriver
from sandbox.slack.server import LocalSlack
from sandbox.slack.socket import NoSocketConnection
from sandbox.slack.state import (
    Message,
    MessageVersion,
    OpenView,
    RecordedCall,
    ResponsePost,
    ResponseUrl,
    SlackError,
    User,
)

__all__ = [
    "DeliveryResult",
    "LocalSlack",
    "Message",
    "MessageVersion",
    "NoSocketConnection",
    "OpenView",
    "RecordedCall",
    "ResponsePost",
    "ResponseUrl",
    "SlackDriver",
    "SlackError",
    "User",
]
