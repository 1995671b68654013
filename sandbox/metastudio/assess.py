"""What the local MetaStudio reports about a job's audio and the account's training quotas.

``assess_result`` carries one entry per check (``AssessProperty`` in the SDK: ``expected``,
``actual``, ``suggestion`` in Chinese, ``suggestion_en`` and ``status``, non-zero when the
figure is out of range) and an overall ``suggestion``. The figures are the stand-in's own;
the shape is the SDK's (huaweicloudsdkmetastudio 3.1.219).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Check = Literal["speed", "sound", "snr", "reverb", "dnsmos_ovrl", "dnsmos_bak"]
CHECKS: tuple[Check, ...] = ("speed", "sound", "snr", "reverb", "dnsmos_ovrl", "dnsmos_bak")

# check: (expected, actual in range, actual out of range, suggestion, suggestion_en)
_FIGURES: dict[str, tuple[str, str, str, str, str]] = {
    "speed": (
        "3.0-6.0 字/秒",
        "4.6",
        "7.4",
        "语速过快，请放慢语速重新录制",
        "Speech is too fast; record again more slowly",
    ),
    "sound": (
        "-30~-15 dBFS",
        "-21.3",
        "-38.9",
        "音量过低，请靠近麦克风录制",
        "Volume is too low; record closer to the microphone",
    ),
    "snr": (
        ">=35 dB",
        "41.2",
        "18.7",
        "信噪比过低，请在安静环境中录制",
        "Signal-to-noise ratio is too low; record somewhere quiet",
    ),
    "reverb": (
        "<=0.4 s",
        "0.21",
        "0.93",
        "混响过大，请在吸音良好的房间录制",
        "Too much reverberation; record in a room that absorbs sound",
    ),
    "dnsmos_ovrl": (
        ">=3.0",
        "3.42",
        "2.31",
        "整体音质偏低，请检查录音设备",
        "Overall quality is low; check the recording setup",
    ),
    "dnsmos_bak": (
        ">=3.5",
        "3.96",
        "2.64",
        "背景噪声偏大，请消除背景噪声",
        "Background noise is high; remove it",
    ),
}


def assess_result(out_of_range: Iterable[str]) -> dict[str, Any]:
    """An ``assess_result`` with ``out_of_range`` checks failing and the rest in range."""
    failing = set(out_of_range)
    result: dict[str, Any] = {}
    for check in CHECKS:
        expected, good, bad, suggestion, suggestion_en = _FIGURES[check]
        fails = check in failing
        result[check] = {
            "expected": expected,
            "actual": bad if fails else good,
            "suggestion": suggestion if fails else "",
            "suggestion_en": suggestion_en if fails else "",
            "status": 1 if fails else 0,
        }
    result["suggestion"] = (
        "音频存在质量问题，建议按各项建议重新录制后再提交"
        if failing
        else "音频质量良好，可以提交训练"
    )
    return result


QuotaField = Literal["flexus", "basic", "middle", "middle_on_demand", "advance", "third_party_cmww"]
QUOTA_FIELDS: tuple[QuotaField, ...] = (
    "flexus",
    "basic",
    "middle",
    "middle_on_demand",
    "advance",
    "third_party_cmww",
)
# The ``resource_type`` of each counter's resources.
_RESOURCE_TYPES: dict[str, str] = {
    "flexus": "FLEXUS",
    "basic": "BASIC",
    "middle": "MIDDLE",
    "middle_on_demand": "MIDDLE",
    "advance": "ADVANCE",
    "third_party_cmww": "THIRD_PARTY",
}


class Quotas(BaseModel):
    """Trainings left per type, as ``resource_available_nums`` counts them."""

    model_config = ConfigDict(extra="forbid")

    flexus: int = Field(default=0, ge=0)
    basic: int = Field(default=5, ge=0)
    middle: int = Field(default=2, ge=0)
    middle_on_demand: int = Field(default=0, ge=0)
    advance: int = Field(default=0, ge=0)
    third_party_cmww: int = Field(default=0, ge=0)
    expire_time: str = "2027-06-30T23:59:59Z"


def quotas_json(quotas: Quotas, offset: int, limit: int) -> dict[str, Any]:
    """The body of ``GET /v1/{project_id}/voice-training-manage/quotas``."""
    counts: Mapping[str, int] = {name: getattr(quotas, name) for name in QUOTA_FIELDS}
    resources = [
        {
            "operation_type": "PURCHASE",
            "resource_source": "PURCHASED",
            "resource_id": f"voice-training-{name.replace('_', '-')}",
            "resource_nums": count,
            "resource_available_nums": count,
            "resource_type": _RESOURCE_TYPES[name],
            "charge_mode": "ONE_TIME",
            "expire_time": quotas.expire_time,
            "status": 1,
        }
        for name, count in counts.items()
        if count
    ]
    return {
        "count": len(resources),
        "resource_available_nums": dict(counts),
        "resources": resources[offset : offset + limit],
    }
