"""A circuit breaker for the dialogue engine: stop waiting on a dead Rasa, probe it, come back.

Pure state machine with an injected clock (tested with tables). CLOSED: calls go through; after
``failures_to_open`` consecutive failures it OPENs and calls are refused (the worker falls back to
retrieval at once instead of waiting for a timeout per message). After ``reset_after_s`` one call is
let through (HALF_OPEN); its success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    clock: Callable[[], float]
    failures_to_open: int = 2
    reset_after_s: float = 5.0
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    transitions: list[tuple[CircuitState, CircuitState]] = field(default_factory=list)

    def allow(self) -> bool:
        """May a call be made now? In HALF_OPEN only the single probe call is allowed."""
        if self.state == CircuitState.CLOSED:
            return True
        if self.state == CircuitState.OPEN and self.clock() - self.opened_at >= self.reset_after_s:
            self._move(CircuitState.HALF_OPEN)
            return True
        return False

    def record_success(self) -> None:
        self.failures = 0
        if self.state != CircuitState.CLOSED:
            self._move(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == CircuitState.HALF_OPEN or (
            self.state == CircuitState.CLOSED and self.failures >= self.failures_to_open
        ):
            self.opened_at = self.clock()
            self._move(CircuitState.OPEN)

    def _move(self, new: CircuitState) -> None:
        self.transitions.append((self.state, new))
        self.state = new
