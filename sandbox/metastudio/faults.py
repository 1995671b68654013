"""Fault injection for the API endpoints: latency, throttling, 5xx and lost replies.

One seeded ``random.Random`` drives every decision, so a run with the same seed and the
same request order injects the same faults.
"""

from __future__ import annotations

import random
import re
import threading
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Fault(StrEnum):
    THROTTLE = "throttle"
    ERROR = "error"
    LOST_REPLY = "lost_reply"


class FaultConfig(BaseModel):
    """What to inject. Rates are per request; their sum is checked in this order:
    throttle, error, lost reply (a rate of 1.0 makes a fault certain)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    throttle_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    lost_reply_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency: float = Field(default=0.0, ge=0.0)
    # "bad_gateway": apply, then answer 502 APIGW.0202; "timeout": apply, then hold the
    # answer for lost_reply_delay seconds (or until the client hangs up); "late": answer
    # 502 at once and apply the request lost_reply_delay seconds later (the backend was
    # still working on it when the gateway gave up).
    lost_reply_mode: Literal["bad_gateway", "timeout", "late"] = "bad_gateway"
    lost_reply_delay: float = Field(default=30.0, ge=0.0)
    # At most this many faults (throttle, error, lost reply) from now on; latency is kept.
    limit: int | None = Field(default=None, ge=0)
    # "html": injected errors come as a proxy's HTML page instead of MetaStudio's JSON body.
    error_body: Literal["json", "html"] = "json"
    seed: int | None = None
    methods: frozenset[str] | None = None
    # Only requests whose path matches this regular expression (``re.search``).
    path: str | None = None

    @field_validator("path")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    @field_validator("methods")
    @classmethod
    def _upper(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        return None if value is None else frozenset(m.upper() for m in value)

    def to_json(self) -> dict[str, object]:
        data = self.model_dump(mode="json")
        if self.methods is not None:
            data["methods"] = sorted(self.methods)
        return data


class FaultInjector:
    """Decides, per API request, which fault (if any) to inject; counts what it injected."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config or FaultConfig()
        self._rng = random.Random(self._config.seed)
        self._injected = 0
        self.counts: dict[str, int] = {"latency": 0, **{f.value: 0 for f in Fault}}

    @property
    def config(self) -> FaultConfig:
        return self._config

    @config.setter
    def config(self, config: FaultConfig) -> None:
        with self._lock:
            self._config = config
            self._rng = random.Random(config.seed)
            self._injected = 0

    def decide(self, method: str, path: str = "/") -> tuple[float, Fault | None]:
        """Return (seconds of added latency, fault to inject or None)."""
        with self._lock:
            cfg = self._config
            if cfg.methods is not None and method.upper() not in cfg.methods:
                return 0.0, None
            if cfg.path is not None and re.search(cfg.path, path) is None:
                return 0.0, None
            if cfg.latency:
                self.counts["latency"] += 1
            if not (cfg.throttle_rate or cfg.error_rate or cfg.lost_reply_rate):
                return cfg.latency, None
            if cfg.limit is not None and self._injected >= cfg.limit:
                return cfg.latency, None
            draw = self._rng.random()
            fault: Fault | None = None
            if draw < cfg.throttle_rate:
                fault = Fault.THROTTLE
            elif draw < cfg.throttle_rate + cfg.error_rate:
                fault = Fault.ERROR
            elif draw < cfg.throttle_rate + cfg.error_rate + cfg.lost_reply_rate:
                fault = Fault.LOST_REPLY
            if fault is not None:
                self.counts[fault.value] += 1
                self._injected += 1
            return cfg.latency, fault
