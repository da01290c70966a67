"""``SpanBuffer``: the last traces of this process, kept so the UI can draw a turn's spans as a timeline.

A span processor beside whatever exporter the operator configured (OTLP, JSON lines): it never replaces them.
Bounded (an LRU of ``traces`` trace ids), so a long-running server holds a fixed amount.
"""

from __future__ import annotations

import threading
from typing import Any

from cachetools import LRUCache
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from regionreasoner.agent.tracing import span_record

__all__ = ["SpanBuffer"]


class SpanBuffer(SpanProcessor):
    """Finished spans grouped by trace id (32 hex digits, as ``Turn.trace_id``), newest ``traces`` traces."""

    def __init__(self, traces: int = 256) -> None:
        self._lock = threading.Lock()
        self._traces: LRUCache[str, list[dict[str, Any]]] = LRUCache(maxsize=traces)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing: spans are kept when they end."""

    def on_end(self, span: ReadableSpan) -> None:
        """Keep ``span`` under its trace id."""
        ctx = span.get_span_context()
        if ctx is None:
            return
        key = f"{ctx.trace_id:032x}"
        record = span_record(span)
        with self._lock:
            spans = self._traces.get(key)
            if spans is None:
                spans = []
                self._traces[key] = spans
            if len(spans) < 1000:  # a turn has tens of spans; the cap bounds a runaway trace
                spans.append(record)

    def spans(self, trace_id: str) -> list[dict[str, Any]] | None:
        """The kept spans of ``trace_id`` in end order, or None when none is kept (evicted, other process)."""
        with self._lock:
            spans = self._traces.get(trace_id.lower().removeprefix("0x"))
            return list(spans) if spans is not None else None

    def shutdown(self) -> None:
        """Drop everything."""
        with self._lock:
            self._traces.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered for export."""
        return True
