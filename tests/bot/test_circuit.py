"""The circuit breaker as a table: events in, state and allow() out, with an injected clock."""

from __future__ import annotations

import pytest

from bot.circuit import CircuitBreaker, CircuitState

CLOSED, OPEN, HALF = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


@pytest.mark.parametrize(("steps", "final"), [
    # (time, event) where event is "fail", "ok" or "allow?<expected>"
    ([(0, "fail")], CLOSED),
    ([(0, "fail"), (0, "fail")], OPEN),
    ([(0, "fail"), (0, "ok"), (0, "fail")], CLOSED),  # failures must be consecutive
    ([(0, "fail"), (0, "fail"), (1, "allow?False")], OPEN),
    ([(0, "fail"), (0, "fail"), (5, "allow?True")], HALF),
    ([(0, "fail"), (0, "fail"), (5, "allow?True"), (5, "allow?False")], HALF),  # one probe at a time
    ([(0, "fail"), (0, "fail"), (5, "allow?True"), (5, "ok"), (5, "allow?True")], CLOSED),
    ([(0, "fail"), (0, "fail"), (5, "allow?True"), (6, "fail"), (10, "allow?False"), (11, "allow?True")], HALF),
])
def test_breaker(steps: list[tuple[float, str]], final: CircuitState) -> None:
    now = [0.0]
    breaker = CircuitBreaker(clock=lambda: now[0], failures_to_open=2, reset_after_s=5)
    for at, event in steps:
        now[0] = at
        if event == "fail":
            breaker.record_failure()
        elif event == "ok":
            breaker.record_success()
        else:
            assert breaker.allow() is (event == "allow?True"), (at, event)
    assert breaker.state == final
