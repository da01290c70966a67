"""OpenTelemetry tracing of turns: a span per turn, per node, per model call and per tool call.

Span tree of one turn::

    regionreasoner.turn                      (dialogue id, turn index, status, regions, citations, usage, frame)
    ├── regionreasoner.node resolve
    ├── regionreasoner.node scene
    │   └── chat <model>                     (GenAI semantic conventions: operation, model, token usage, finish)
    ├── ...
    └── regionreasoner.node remember

Model spans follow the GenAI semantic conventions (``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.usage.input_tokens`` / ``output_tokens``, ``gen_ai.response.finish_reasons``); our own attributes live under
``regionreasoner.*``.  Section texts are span events (``regionreasoner.section``) unless ``capture_sections`` is off.
The turn span is opened by the first node and closed by the last, so the tree is the same whether the graph runs
in-process or under ``langgraph dev``; open turn spans are kept in a process-local registry keyed by turn key.

:func:`configure_tracing` sets up exporters: console, OTLP over HTTP, and a JSON-lines file.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, Status, StatusCode, Tracer

__all__ = [
    "JsonLinesSpanExporter",
    "TurnTracing",
    "configure_tracing",
    "span_record",
]

INSTRUMENTATION = "regionreasoner"
AttrValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]


def _hex(value: int, width: int) -> str:
    return f"0x{value:0{width}x}"


def _attributes(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (attrs or {}).items()}


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A span as a JSON-ready dict, with the field names and layout of OpenTelemetry's ``ReadableSpan.to_json``."""
    ctx = span.get_span_context()
    return {
        "name": span.name,
        "context": {
            "trace_id": _hex(ctx.trace_id, 32) if ctx else None,
            "span_id": _hex(ctx.span_id, 16) if ctx else None,
        },
        "kind": str(span.kind),
        "parent_id": _hex(span.parent.span_id, 16) if span.parent else None,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": {"status_code": span.status.status_code.name, "description": span.status.description},
        "attributes": _attributes(span.attributes),
        "events": [
            {"name": e.name, "timestamp": e.timestamp, "attributes": _attributes(e.attributes)} for e in span.events
        ],
        "resource": _attributes(span.resource.attributes),
    }


class JsonLinesSpanExporter(SpanExporter):
    """Writes each finished span as one compact JSON object per line (see :func:`span_record`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Append the spans; returns FAILURE after shutdown."""
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            for span in spans:
                self._file.write(json.dumps(span_record(span), separators=(",", ":"), default=str) + "\n")
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def configure_tracing(
    *,
    console: bool = False,
    otlp_endpoint: str | None = None,
    jsonl_path: str | Path | None = None,
    service_name: str = "regionreasoner",
    set_global: bool = False,
) -> TracerProvider:
    """A tracer provider exporting to the console, an OTLP/HTTP collector and/or a JSON-lines file.

    ``otlp_endpoint`` is the collector's traces URL (e.g. ``http://127.0.0.1:4318/v1/traces``).  The JSON-lines
    file and OTLP are written by a background batch processor (call ``provider.force_flush()`` or ``shutdown()``
    to have every span written); the console exporter writes each span as it ends.
    """
    from opentelemetry.sdk.resources import Resource

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    if jsonl_path is not None:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(jsonl_path), schedule_delay_millis=1000))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


_OPEN_TURNS: dict[str, Span] = {}
_OPEN_LOCK = threading.Lock()
_TRACERS: weakref.WeakKeyDictionary[trace.TracerProvider, Tracer] = weakref.WeakKeyDictionary()


def _tracer(provider: trace.TracerProvider) -> Tracer:
    """The project's tracer of ``provider``, made once per provider.

    Every node asks for it, and the SDK builds a new Tracer and instrumentation scope on each ``get_tracer`` call.
    """
    tracer = _TRACERS.get(provider)
    if tracer is None:
        tracer = _TRACERS.setdefault(provider, provider.get_tracer(INSTRUMENTATION))
    return tracer


class TurnTracing:
    """Span helpers bound to one tracer provider (None: the global provider)."""

    def __init__(self, provider: trace.TracerProvider | None, *, capture_sections: bool = True) -> None:
        self.tracer: Tracer = _tracer(provider or trace.get_tracer_provider())
        self.capture_sections = capture_sections

    def start_turn(self, key: str, attributes: Mapping[str, AttrValue]) -> Span:
        """Open the turn span of ``key`` (a child of the caller's current span, if any)."""
        span = self.tracer.start_span("regionreasoner.turn", attributes=dict(attributes))
        with _OPEN_LOCK:
            _OPEN_TURNS[key] = span
        return span

    @staticmethod
    def turn_span(key: str) -> Span | None:
        """The open turn span of ``key``."""
        with _OPEN_LOCK:
            return _OPEN_TURNS.get(key)

    @staticmethod
    def end_turn(key: str, attributes: Mapping[str, AttrValue], *, error: BaseException | None = None) -> None:
        """Set the final attributes of the turn span of ``key`` and end it (no-op when it is not open)."""
        with _OPEN_LOCK:
            span = _OPEN_TURNS.pop(key, None)
        if span is None:
            return
        span.set_attributes(dict(attributes))
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end()

    @contextmanager
    def node(self, key: str, name: str) -> Iterator[Span]:
        """A node span under the turn span of ``key``; an exception marks it and ends the turn span as failed."""
        parent = self.turn_span(key)
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        with self.tracer.start_as_current_span(
            f"regionreasoner.node {name}",
            context=ctx,
            attributes={"regionreasoner.node": name},
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                self.end_turn(key, {"regionreasoner.turn.status": "error"}, error=exc)
                raise

    @contextmanager
    def model_call(self, *, system: str, model: str, section: str, request: Mapping[str, AttrValue]) -> Iterator[Span]:
        """A GenAI ``chat`` span for one policy call, under the current (node) span."""
        attributes: dict[str, AttrValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": system,
            "gen_ai.provider.name": system,
            "gen_ai.request.model": model,
            "regionreasoner.section": section,
            **request,
        }
        with self.tracer.start_as_current_span(f"chat {model}", kind=trace.SpanKind.CLIENT, attributes=attributes) as s:
            yield s

    @contextmanager
    def tool_call(self, name: str, arguments: str) -> Iterator[Span]:
        """An ``execute_tool`` span for one tool call, under the current (node) span."""
        attributes: dict[str, AttrValue] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "regionreasoner.tool.arguments": arguments,
        }
        with self.tracer.start_as_current_span(f"execute_tool {name}", attributes=attributes) as span:
            yield span

    def section_event(self, span: Span, section: str, text: str) -> None:
        """Record a section's text on ``span`` (only when capturing is on)."""
        if self.capture_sections:
            span.add_event("regionreasoner.section", {"regionreasoner.section": section, "regionreasoner.text": text})


def span_attributes(values: Mapping[str, Any]) -> dict[str, AttrValue]:
    """Drop None values and turn tuples into lists (OpenTelemetry attribute values)."""
    out: dict[str, AttrValue] = {}
    for k, v in values.items():
        if v is None:
            continue
        out[k] = list(v) if isinstance(v, tuple) else v
    return out
