"""The admin-editable part of the SLA policy: validation and (de)serialisation, all pure.

An admin edits the per-priority default targets (first response, next response, resolution), the
peak-season factor and the warning lead time. They are stored as one JSON document (see
``ticketing.policy``); everything else about the policy (the business calendar, any channel
exceptions) stays server configuration. VIP targets are never stored: they are derived from the
defaults by the one rule ``SlaPolicy.standard()`` uses -- half the response times, the same resolution
time -- so raising a default raises the VIP promise with it.

``parse_change`` reads a partial ``PUT /api/sla`` body, merges it onto the settings in force and
validates the *result* (``check``), so a request that is only wrong in combination with what is stored
(a first response longer than the stored resolution) is refused before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from ticketing.priority import Priority, Tier
from ticketing.sla import VIP_RESPONSE_FACTOR, Profile, SlaPolicy, SlaTargets, vip_targets

MIN_TARGET = timedelta(minutes=1)  # a shorter promise cannot be kept by a human and only floods alerts
MAX_TARGET = timedelta(days=30)
MIN_PEAK_FACTOR, MAX_PEAK_FACTOR = 1.0, 10.0  # peak relaxes (never tightens), and 10x is already a week for P3
CLOCKS = ("first_response_s", "next_response_s", "resolution_s")
FIELDS = ("profile", "targets", "peak_factor", "warn_before_s")


class SlaSettingsError(ValueError):
    """Bad SLA settings: ``field`` names the offending input (e.g. ``targets.P0.first_response_s``);
    the message is bilingual, Chinese first, and starts with the field."""

    def __init__(self, field: str, zh: str, en: str) -> None:
        self.field = field
        self.message = f"{field}: {zh} / {en}" if field else f"{zh} / {en}"
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class SlaSettings:
    """Default targets per priority, the peak factor and the warning lead time."""

    targets: Mapping[Priority, SlaTargets]
    peak_factor: float
    warn_before: timedelta

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", MappingProxyType(dict(self.targets)))

    @classmethod
    def of(cls, policy: SlaPolicy, peak_factor: float) -> SlaSettings:
        """The editable part of ``policy`` (its defaults and warning lead) with ``peak_factor``."""
        return cls(targets=policy.defaults, peak_factor=peak_factor, warn_before=policy.warn_before)

    def apply(self, base: SlaPolicy) -> SlaPolicy:
        """``base`` with these defaults, VIP targets re-derived from them, and this warning lead.

        The calendar and any other target exceptions of ``base`` are kept; the result is the standard
        profile (``.peak(self.peak_factor)`` of it is the peak one)."""
        kept = {k: t for k, t in base.targets.items() if not (k[1] is Tier.VIP and k[2] is None)}
        return replace(base, defaults=dict(self.targets), targets={**kept, **vip_targets(self.targets)},
                       warn_before=self.warn_before, profile=Profile.STANDARD)

    def to_json(self) -> dict[str, Any]:
        """The stored document (and the shape ``from_json`` reads back)."""
        return {"targets": targets_json(self.targets), "peak_factor": self.peak_factor,
                "warn_before_s": _seconds(self.warn_before)}


@dataclass(frozen=True, slots=True)
class SlaChange:
    """A validated ``PUT /api/sla``: the profile to switch to and/or the new settings (None: unchanged)."""

    profile: Profile | None = None
    settings: SlaSettings | None = None


def targets_json(targets: Mapping[Priority, SlaTargets]) -> dict[str, dict[str, int]]:
    """``{"P0": {"first_response_s": 600, ...}, ...}`` in priority order."""
    return {p.name: {"first_response_s": _seconds(t.first_response), "next_response_s": _seconds(t.next_response),
                     "resolution_s": _seconds(t.resolution)}
            for p, t in sorted(targets.items())}


def check_values(targets: Mapping[str, Mapping[str, int]], peak_factor: float, warn_before_s: int) -> None:
    """Raise :class:`SlaSettingsError` unless these (whole-second) values make a sensible policy.

    - every priority P0-P3 has all three targets, each from 1 minute to 30 days;
    - a first response is never promised later than the resolution;
    - the peak factor is from 1 to 10;
    - the warning lead is from 0 to 30 days. It is not bounded by the targets: a warning fires at most
      half a target before it is due (``sla.effective_warn_before``), which is how the built-in
      30-minute lead works with the 10-minute P0 target, so a long lead means "half" for short targets.
    """
    for priority in Priority:
        clocks = targets.get(priority.name)
        if clocks is None:
            raise SlaSettingsError(f"targets.{priority.name}", "缺少该优先级的目标", "the targets are missing")
        for clock in CLOCKS:
            if clock not in clocks:
                raise SlaSettingsError(f"targets.{priority.name}.{clock}", "缺少该时限", "this target is missing")
            _check_seconds(f"targets.{priority.name}.{clock}", clocks[clock], MIN_TARGET)
        first, resolution = clocks["first_response_s"], clocks["resolution_s"]
        if first > resolution:
            raise SlaSettingsError(
                f"targets.{priority.name}.first_response_s",
                f"首次响应（{first} 秒）不能长于解决时限（{resolution} 秒）",
                f"first response ({first} s) must not be longer than resolution ({resolution} s)")
    if not math.isfinite(peak_factor) or not MIN_PEAK_FACTOR <= peak_factor <= MAX_PEAK_FACTOR:
        raise SlaSettingsError("peak_factor", "大促倍数须在 1 到 10 之间", "the peak factor must be from 1 to 10")
    _check_seconds("warn_before_s", warn_before_s, timedelta(0))


def check(settings: SlaSettings) -> None:
    """``check_values`` of settings already built (e.g. the server's configured defaults)."""
    check_values(targets_json(settings.targets), settings.peak_factor, _seconds(settings.warn_before))


def parse_change(body: Mapping[str, Any], current: SlaSettings) -> SlaChange:
    """Validate a ``PUT /api/sla`` body (any subset of ``profile``, ``targets``, ``peak_factor``,
    ``warn_before_s``; ``targets`` may name some priorities and some of their clocks) merged onto the
    settings in force. Raises :class:`SlaSettingsError` naming the first bad field; nothing partial."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise SlaSettingsError(unknown[0], "未知字段", f"unknown field; expected one of {', '.join(FIELDS)}")
    if not body:
        raise SlaSettingsError("", "请求中没有要修改的内容", f"nothing to change: send any of {', '.join(FIELDS)}")
    profile = None
    if "profile" in body:
        try:
            profile = Profile(body["profile"])
        except ValueError:
            raise SlaSettingsError("profile", "须为 standard 或 peak", "must be standard or peak") from None
    if not set(body) - {"profile"}:
        return SlaChange(profile=profile)
    targets = targets_json(current.targets)
    if "targets" in body:
        for name, clocks in _targets_body(body["targets"]).items():
            targets[name] = {**targets.get(name, {}), **clocks}
    peak_factor = _number("peak_factor", body["peak_factor"]) if "peak_factor" in body else current.peak_factor
    warn_before_s = (_whole("warn_before_s", body["warn_before_s"]) if "warn_before_s" in body
                     else _seconds(current.warn_before))
    return SlaChange(profile=profile, settings=_build(targets, peak_factor, warn_before_s))


def from_json(value: Any) -> SlaSettings:
    """Read back a stored document (``SlaSettings.to_json``); raises :class:`SlaSettingsError` when it
    is incomplete or out of bounds (the store then falls back to the configured policy)."""
    if not isinstance(value, dict):
        raise SlaSettingsError("", "SLA 设置须为 JSON 对象", "the SLA settings must be a JSON object")
    return _build(_targets_body(value.get("targets")), _number("peak_factor", value.get("peak_factor")),
                  _whole("warn_before_s", value.get("warn_before_s")))


# --- parsing helpers --------------------------------------------------------------------------------


def _build(targets: Mapping[str, Mapping[str, int]], peak_factor: float, warn_before_s: int) -> SlaSettings:
    check_values(targets, peak_factor, warn_before_s)
    return SlaSettings(
        targets={p: SlaTargets(*(timedelta(seconds=targets[p.name][c]) for c in CLOCKS)) for p in Priority},
        peak_factor=peak_factor, warn_before=timedelta(seconds=warn_before_s))


def _targets_body(raw: Any) -> dict[str, dict[str, int]]:
    """``{"P1": {"resolution_s": 7200}}`` type-checked: known priorities and clocks, whole seconds."""
    if not isinstance(raw, dict) or not raw:
        raise SlaSettingsError("targets", '须为非空对象，如 {"P0": {"first_response_s": 600}}',
                               'must be a non-empty object such as {"P0": {"first_response_s": 600}}')
    parsed: dict[str, dict[str, int]] = {}
    for name, clocks in raw.items():
        if name not in Priority.__members__:
            raise SlaSettingsError(f"targets.{name}", "未知优先级，应为 P0–P3", "unknown priority; expected P0-P3")
        if not isinstance(clocks, dict) or not clocks:
            raise SlaSettingsError(f"targets.{name}", "须为非空对象",
                                   f"must be a non-empty object of {', '.join(CLOCKS)}")
        bad = sorted(set(clocks) - set(CLOCKS))
        if bad:
            raise SlaSettingsError(f"targets.{name}.{bad[0]}", "未知字段",
                                   f"unknown field; expected {', '.join(CLOCKS)}")
        parsed[name] = {clock: _whole(f"targets.{name}.{clock}", v) for clock, v in clocks.items()}
    return parsed


def _whole(name: str, value: Any) -> int:
    # bool is an int in Python; ``true`` seconds is a client bug, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SlaSettingsError(name, "须为整数秒", "must be a whole number of seconds")
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SlaSettingsError(name, "须为数字", "must be a number")
    return float(value)


def _check_seconds(name: str, value: int, minimum: timedelta) -> None:
    lo, hi = _seconds(minimum), _seconds(MAX_TARGET)
    if value < lo:
        if lo == 0:
            raise SlaSettingsError(name, "不能为负数", "must not be negative")
        raise SlaSettingsError(name, f"至少 {lo} 秒（{lo // 60} 分钟）", f"must be at least {lo} s ({lo // 60} min)")
    if value > hi:
        raise SlaSettingsError(name, f"不能超过 30 天（{hi} 秒）", f"must not exceed 30 days ({hi} s)")


def _seconds(value: timedelta) -> int:
    return round(value.total_seconds())


__all__ = [
    "CLOCKS", "MAX_PEAK_FACTOR", "MAX_TARGET", "MIN_PEAK_FACTOR", "MIN_TARGET", "VIP_RESPONSE_FACTOR", "SlaChange",
    "SlaSettings", "SlaSettingsError", "check", "check_values", "from_json", "parse_change", "targets_json",
    "vip_targets",
]
