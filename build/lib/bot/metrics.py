"""Prometheus metrics of one bot process, on a registry of its own (no import-time globals):
``Metrics`` for the web process (served at ``/metrics``), ``WorkerMetrics`` for a worker
(served on ``VOICEBOT_WORKER_METRICS_PORT``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "WorkerMetrics"]


class CredentialsWatch(Protocol):
    """What the metrics read of the credentials breaker (``bot.credentials``)."""

    ok: bool
    on_refused: list[Callable[[str], None]]


class _CredentialsMetrics:
    """MetaStudio refusing the bot's credentials, as both process kinds report it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.auth_failures = Counter(
            "voicebot_metastudio_auth_failures",
            "Calls MetaStudio refused for the bot's credentials (APIG.0301 and IAM), by kind:"
            " signature, clock, unknown_ak, locked, token, iam.",
            ["kind"],
            registry=registry,
        )
        self.credentials_ok = Gauge(
            "voicebot_metastudio_credentials_ok",
            "1 while MetaStudio accepts the bot's credentials, 0 while calls are held because"
            " it refused them.",
            registry=registry,
        )
        self.credentials_ok.set(1)

    def watch_credentials(self, breaker: CredentialsWatch) -> None:
        self.credentials_ok.set_function(lambda: 1.0 if breaker.ok else 0.0)
        breaker.on_refused.append(lambda kind: self.auth_failures.labels(kind=kind).inc())


class Metrics(_CredentialsMetrics):
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        super().__init__(self.registry)
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


class WorkerMetrics(_CredentialsMetrics):
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        super().__init__(self.registry)
        self.steps = Counter(
            "voicebot_tracking_steps",
            "Tracking steps, by the request's status after the step ('fault' when MetaStudio"
            " failed and the step backs off).",
            ["status"],
            registry=self.registry,
        )
        self.retries = Counter(
            "voicebot_tracking_retries",
            "Steps tried again after an error outside MetaStudio's answers, by error.",
            ["error"],
            registry=self.registry,
        )
        self.replies = Counter(
            "voicebot_thread_replies",
            "Thread replies the worker posted (decisions, submits, review and training outcomes).",
            registry=self.registry,
        )
        self.sweeps = Counter(
            "voicebot_review_sweeps",
            "Review sweeps, by result: ok, failed, or per_job (the list call kept failing and"
            " every job under review was read on its own).",
            ["result"],
            registry=self.registry,
        )
        self.reviews_ended = Counter(
            "voicebot_reviews_ended",
            "Reviews the sweep saw end (a step was started for each).",
            registry=self.registry,
        )
        self.under_review = Gauge(
            "voicebot_jobs_under_review",
            "Jobs under review that the sweep watched at its last run.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
