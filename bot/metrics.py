"""Prometheus metrics of one bot process, on a registry of its own (no import-time globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.commands = Counter(
            "voicebot_commands",
            "Slash commands received, by subcommand and result.",
            ["subcommand", "result"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "voicebot_ack_seconds",
            "Time from receiving a Slack request to ack().",
            ["kind"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0),
            registry=self.registry,
        )
        self.decisions = Counter(
            "voicebot_approval_decisions",
            "Approval clicks, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.denials = Counter(
            "voicebot_permission_denials",
            "Requests refused by the permission mapping, by action.",
            ["action"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
