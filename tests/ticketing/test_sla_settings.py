"""Validation of admin-edited SLA settings (pure): table-driven good and bad ``PUT /api/sla`` bodies,
the merge onto the settings in force, the VIP derivation and the stored document round trip."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ticketing.priority import Priority, Tier
from ticketing.sla import Profile, SlaPolicy, SlaTargets
from ticketing.sla_settings import SlaSettings, SlaSettingsError, from_json, parse_change, targets_json

BUILT_IN = SlaSettings.of(SlaPolicy.standard(), 2.0)
DAY = 86_400


def _p0(**clocks: Any) -> dict[str, Any]:
    return {"targets": {"P0": clocks}}


# (body, field named in the error, a word the English half of the message must contain)
BAD: list[tuple[dict[str, Any], str, str]] = [
    ({}, "", "nothing to change"),
    ({"profil": "peak"}, "profil", "unknown field"),
    ({"profile": "holiday"}, "profile", "standard or peak"),
    ({"profile": None}, "profile", "standard or peak"),
    ({"targets": []}, "targets", "non-empty object"),
    ({"targets": {}}, "targets", "non-empty object"),
    ({"targets": {"P4": {"first_response_s": 600}}}, "targets.P4", "unknown priority"),
    ({"targets": {"p0": {"first_response_s": 600}}}, "targets.p0", "unknown priority"),
    ({"targets": {"P0": 600}}, "targets.P0", "non-empty object"),
    ({"targets": {"P0": {}}}, "targets.P0", "non-empty object"),
    (_p0(first_response=600), "targets.P0.first_response", "unknown field"),
    (_p0(first_response_s="600"), "targets.P0.first_response_s", "whole number"),
    (_p0(first_response_s=600.5), "targets.P0.first_response_s", "whole number"),
    (_p0(first_response_s=600.0), "targets.P0.first_response_s", "whole number"),
    (_p0(first_response_s=True), "targets.P0.first_response_s", "whole number"),
    (_p0(first_response_s=None), "targets.P0.first_response_s", "whole number"),
    (_p0(first_response_s=0), "targets.P0.first_response_s", "at least 60"),
    (_p0(first_response_s=-600), "targets.P0.first_response_s", "at least 60"),
    (_p0(first_response_s=59), "targets.P0.first_response_s", "at least 60"),
    (_p0(next_response_s=0), "targets.P0.next_response_s", "at least 60"),
    (_p0(resolution_s=30 * DAY + 1), "targets.P0.resolution_s", "30 days"),
    (_p0(next_response_s=31 * DAY), "targets.P0.next_response_s", "30 days"),
    # P0 resolution is 4 h: a 5 h first response (alone, or with a shorter resolution) is refused
    (_p0(first_response_s=5 * 3600), "targets.P0.first_response_s", "longer than resolution"),
    (_p0(resolution_s=300), "targets.P0.first_response_s", "longer than resolution"),
    ({"peak_factor": 0.5}, "peak_factor", "from 1 to 10"),
    ({"peak_factor": 10.5}, "peak_factor", "from 1 to 10"),
    ({"peak_factor": float("nan")}, "peak_factor", "from 1 to 10"),
    ({"peak_factor": float("inf")}, "peak_factor", "from 1 to 10"),
    ({"peak_factor": "2"}, "peak_factor", "number"),
    ({"peak_factor": True}, "peak_factor", "number"),
    ({"warn_before_s": -1}, "warn_before_s", "negative"),
    ({"warn_before_s": 1.5}, "warn_before_s", "whole number"),
    ({"warn_before_s": 30 * DAY + 1}, "warn_before_s", "30 days"),
    # one bad part refuses the whole request, even when the profile part is fine
    ({"profile": "peak", "warn_before_s": -60}, "warn_before_s", "negative"),
]


@pytest.mark.parametrize(("body", "field", "english"), BAD, ids=[repr(b)[:60] for b, _f, _e in BAD])
def test_bad_input_names_the_field(body: dict[str, Any], field: str, english: str) -> None:
    with pytest.raises(SlaSettingsError) as caught:
        parse_change(body, BUILT_IN)
    error = caught.value
    assert error.field == field
    zh, en = error.message.split(" / ", 1)
    assert zh.startswith(field) and any("\u4e00" <= ch <= "\u9fff" for ch in zh)  # Chinese first
    assert english in en


# (body, expected profile, expected changes as (priority, clock, seconds), peak factor, warn_before_s)
GOOD: list[tuple[dict[str, Any], Profile | None, list[tuple[str, str, int]], float, int]] = [
    ({"profile": "peak"}, Profile.PEAK, [], 2.0, 1800),
    (_p0(first_response_s=300), None, [("P0", "first_response_s", 300)], 2.0, 1800),
    (_p0(first_response_s=60, next_response_s=60), None,
     [("P0", "first_response_s", 60), ("P0", "next_response_s", 60)], 2.0, 1800),
    ({"targets": {"P3": {"resolution_s": 30 * DAY}, "P1": {"first_response_s": 8 * 3600}}}, None,
     [("P3", "resolution_s", 30 * DAY), ("P1", "first_response_s", 8 * 3600)], 2.0, 1800),
    # first response may equal the resolution; next response is not tied to either
    (_p0(first_response_s=4 * 3600, next_response_s=5 * 3600), None,
     [("P0", "first_response_s", 4 * 3600), ("P0", "next_response_s", 5 * 3600)], 2.0, 1800),
    ({"peak_factor": 1}, None, [], 1.0, 1800),
    ({"peak_factor": 10}, None, [], 10.0, 1800),
    ({"peak_factor": 1.5, "warn_before_s": 0}, None, [], 1.5, 0),
    # a lead longer than a target is fine: warnings fire at most half the target early
    ({"warn_before_s": 2 * 3600}, None, [], 2.0, 7200),
    ({"profile": "standard", "targets": {"P2": {"next_response_s": 3600}}, "peak_factor": 3, "warn_before_s": 600},
     Profile.STANDARD, [("P2", "next_response_s", 3600)], 3.0, 600),
]


@pytest.mark.parametrize(("body", "profile", "changes", "factor", "warn"), GOOD,
                         ids=[repr(g[0])[:60] for g in GOOD])
def test_good_input_merges_onto_what_is_in_force(body: dict[str, Any], profile: Profile | None,
                                                 changes: list[tuple[str, str, int]], factor: float,
                                                 warn: int) -> None:
    change = parse_change(body, BUILT_IN)
    assert change.profile is profile
    if set(body) == {"profile"}:
        assert change.settings is None  # a bare profile switch leaves the stored targets alone
        return
    assert change.settings is not None
    expected = targets_json(BUILT_IN.targets)
    for priority, clock, seconds in changes:
        expected[priority][clock] = seconds
    assert targets_json(change.settings.targets) == expected
    assert change.settings.peak_factor == factor
    assert change.settings.warn_before == timedelta(seconds=warn)


def test_built_in_policy_passes_its_own_validation() -> None:
    assert from_json(BUILT_IN.to_json()) == BUILT_IN
    doc = BUILT_IN.to_json()
    assert doc == {"targets": {
        "P0": {"first_response_s": 600, "next_response_s": 600, "resolution_s": 14_400},
        "P1": {"first_response_s": 1800, "next_response_s": 1800, "resolution_s": 28_800},
        "P2": {"first_response_s": 7200, "next_response_s": 7200, "resolution_s": 86_400},
        "P3": {"first_response_s": 28_800, "next_response_s": 28_800, "resolution_s": 259_200},
    }, "peak_factor": 2.0, "warn_before_s": 1800}


@pytest.mark.parametrize(("doc", "field"), [
    (None, ""),
    ([], ""),
    ({"targets": {"P0": {}}, "peak_factor": 2, "warn_before_s": 0}, "targets.P0"),
    ({"peak_factor": 2, "warn_before_s": 0}, "targets"),
    ({**BUILT_IN.to_json(), "peak_factor": 99}, "peak_factor"),
    ({**BUILT_IN.to_json(), "warn_before_s": None}, "warn_before_s"),
    ({**BUILT_IN.to_json(), "targets": {**BUILT_IN.to_json()["targets"], "P1": {"first_response_s": 60}}},
     "targets.P1.next_response_s"),
])
def test_a_broken_stored_document_is_refused(doc: Any, field: str) -> None:
    with pytest.raises(SlaSettingsError) as caught:
        from_json(doc)
    assert caught.value.field == field


def test_vip_targets_follow_the_defaults_by_the_standard_rule() -> None:
    base = SlaPolicy.standard()
    # the built-in settings applied to the built-in policy give exactly SlaPolicy.standard()
    assert BUILT_IN.apply(base) == base
    change = parse_change({"targets": {"P1": {"first_response_s": 3600, "next_response_s": 1200}}}, BUILT_IN)
    assert change.settings is not None
    policy = change.settings.apply(base)
    assert policy.targets_for(Priority.P1, Tier.NORMAL, None) == SlaTargets(
        timedelta(hours=1), timedelta(minutes=20), timedelta(hours=8))
    assert policy.targets_for(Priority.P1, Tier.VIP, None) == SlaTargets(
        timedelta(minutes=30), timedelta(minutes=10), timedelta(hours=8))
    assert policy.peak(3).targets_for(Priority.P1, Tier.VIP, None).first_response == timedelta(minutes=90)
