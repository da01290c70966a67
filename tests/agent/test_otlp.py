"""Spans reach an OTLP/HTTP collector (a local receiver started by the test)."""

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.tracing import configure_tracing


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf":
                received.append(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    server.shutdown()
    server.server_close()


def test_spans_are_exported_over_otlp_http(
    collector: tuple[str, list[bytes]],
    make_agent: Callable[..., RegionAgent],
    scene,
    scripted,  # type: ignore[no-untyped-def]
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    endpoint, received = collector
    provider = configure_tracing(otlp_endpoint=endpoint, service_name="rr-test")
    image, obj = scene
    agent = make_agent([scripted(obj["sun"])], tracer_provider=provider)
    agent.dialogue(image.image).ask("Find the sun.")
    assert provider.force_flush(10_000)
    names = set()
    for body in received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
            assert service == "rr-test"
            names |= {s.name for scope in resource_spans.scope_spans for s in scope.spans}
    assert {"regionreasoner.turn", "regionreasoner.node answer", "chat scripted"} <= names
    provider.shutdown()
