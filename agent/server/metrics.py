"""Prometheus metrics of one app (its own registry, so several apps can live in one process, as in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: a scripted turn takes milliseconds, a 7B turn on a GPU seconds, a CPU turn up to minutes."""


class Metrics:
    """Turns by status, turn latency, HTTP requests by route and status, errors by kind, slots in use."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "regionreasoner_turns", "turns finished, by turn status", ["status"], registry=self.registry
        )
        self.turn_seconds = Histogram(
            "regionreasoner_turn_seconds", "wall time of a turn", buckets=_LATENCY_BUCKETS, registry=self.registry
        )
        self.requests = Counter(
            "regionreasoner_http_requests",
            "HTTP requests, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.errors = Counter("regionreasoner_errors", "error answers, by error kind", ["kind"], registry=self.registry)
        self.running = Gauge("regionreasoner_turns_running", "turns running now", registry=self.registry)
        self.waiting = Gauge("regionreasoner_turns_waiting", "turns waiting for a slot", registry=self.registry)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
