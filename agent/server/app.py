"""``create_app``: the ASGI app (FastAPI) over a :class:`~regionreasoner.agent.api.RegionAgent`.

Layers, outside in: a body-size guard (413 before the body is read past the limit), a request id and per-route
metrics, CORS (only when origins are configured), then the routes.  Every error becomes a problem+json body
(problems.py).  Shutdown refuses new turns, waits for running ones up to ``shutdown_grace_s``, then closes the
agent if the app owns it; a turn still running then is abandoned before it is stored (a turn is stored in one
transaction, so it is either all there or not there; asking again with the same key reruns it).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from regionreasoner.agent.server import routes_dialogues, routes_turns
from regionreasoner.agent.server.deps import ServerState
from regionreasoner.agent.server.gate import TurnGate
from regionreasoner.agent.server.problems import (
    PROBLEM_MEDIA,
    BodyTooLargeError,
    Problem,
    problem_response,
)
from regionreasoner.agent.server.settings import ServeSettings
from regionreasoner.agent.server.spans import SpanBuffer
from regionreasoner.core.errors import RegionReasonerError

if TYPE_CHECKING:
    from regionreasoner.agent.api import RegionAgent

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


class BodyLimit:
    """Pure ASGI middleware: refuse bodies above ``limit`` bytes, by Content-Length and while streaming in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = BodyTooLargeError(
            f"the request body exceeds {self.limit} bytes", hint="send a smaller image (or raise max_body_bytes)"
        )
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await problem_response(too_large)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large  # chunked bodies without a length: stop reading at the limit
            return message

        await self.app(scope, counted, send)


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def create_app(
    agent: RegionAgent, settings: ServeSettings, *, spans: SpanBuffer | None = None, owns_agent: bool = False
) -> FastAPI:
    """The server app for ``agent``; ``spans`` (a processor on the agent's tracer provider) feeds the /trace routes.

    ``owns_agent``: close the agent at shutdown (the CLI builds its own agent; tests and apps pass theirs).
    """
    gate = TurnGate(
        slots=settings.max_concurrent_turns,
        queue=settings.max_queued_turns,
        timeout_s=settings.queue_timeout_s,
        retry_after_s=settings.retry_after_s,
    )
    state = ServerState(agent=agent, settings=settings, spans=spans, gate=gate, owns_agent=owns_agent)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gate.draining = False  # an app served again after a shutdown (tests, embedding apps) takes turns again
        yield
        drained = await gate.drain(settings.shutdown_grace_s)
        if not drained:
            logger.warning(
                "shutdown: %d turns still running after %.0f s are abandoned", gate.running, settings.shutdown_grace_s
            )
        if owns_agent:
            await asyncio.to_thread(agent.close)

    app = FastAPI(
        title="regionreasoner",
        summary="multi-round, region-grounded visual dialogue",
        version="1",
        lifespan=lifespan,
    )
    app.state.rr = state

    def openapi() -> dict[str, Any]:
        # Problem bodies are application/problem+json, which FastAPI's `model=` would file under application/json;
        # the routes reference the schema by hand, so it is added to the components here.
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            defs = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = defs
            _absent_not_null(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.middleware("http")
    async def request_id(request: Request, call_next: Any) -> Response:
        rid = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        request.state.request_id = rid
        try:
            response: Response = await call_next(request)
        except Exception as exc:
            response = problem_response(exc, request_id=rid)
        response.headers["X-Request-Id"] = rid
        state.metrics.requests.labels(request.method, _route_of(request), str(response.status_code)).inc()
        if response.status_code >= 400:
            kind = response.headers.get("x-problem-kind", str(response.status_code))
            state.metrics.errors.labels(kind=kind).inc()
        return response

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(exc, request_id=getattr(request.state, "request_id", None))

    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        body = Problem(
            title="Unprocessable Content",
            status=422,
            detail=f"{where}: {first.get('msg', 'invalid')}"[:500],
            kind="ValidationError",
            hint="see the OpenAPI schema at /openapi.json for the request's shape",
        )
        return JSONResponse(
            body.model_dump(exclude_none=True),
            status_code=422,
            media_type=PROBLEM_MEDIA,
            headers={"X-Problem-Kind": "ValidationError"},
        )

    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = Problem(title=str(exc.detail), status=exc.status_code, detail=str(exc.detail), kind="HTTPError")
        headers = {**(exc.headers or {}), "X-Problem-Kind": "HTTPError"}
        return JSONResponse(
            body.model_dump(exclude_none=True), status_code=exc.status_code, media_type=PROBLEM_MEDIA, headers=headers
        )

    app.add_exception_handler(RegionReasonerError, on_error)
    app.add_exception_handler(Exception, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.include_router(routes_dialogues.router)
    app.include_router(routes_turns.router)

    @app.get("/healthz", tags=["ops"], summary="liveness")
    def healthz() -> dict[str, str]:
        """Always ok while the process serves."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="readiness",
        responses={503: {"description": "shutting down", "content": {"application/json": {}}}},
    )
    def readyz() -> JSONResponse:
        """503 while shutting down; else ready (turns running and waiting are reported)."""
        body = {"status": "draining" if gate.draining else "ready", "running": gate.running, "waiting": gate.waiting}
        return JSONResponse(body, status_code=503 if gate.draining else 200)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        """The text exposition format."""
        state.metrics.waiting.set(gate.waiting)
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    if settings.ui:
        _mount_ui(app)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id", "traceparent", "tracestate"],
        )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


def _absent_not_null(schema: dict[str, Any]) -> None:
    """An optional query parameter is absent, never ``null``: drop the null branch FastAPI writes for ``X | None``.

    A query string cannot carry JSON null (``?turn=null`` is the text "null"), so documenting it would invite
    clients, and fuzzers, to send a value no route accepts.
    """
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                options = parameter.get("schema", {}).get("anyOf")
                if parameter.get("in") == "query" and options:
                    kept = [o for o in options if o.get("type") != "null"]
                    if len(kept) == 1:
                        parameter["schema"] = {
                            **{k: v for k, v in parameter["schema"].items() if k != "anyOf"},
                            **kept[0],
                        }


def _mount_ui(app: FastAPI) -> None:
    from starlette.responses import FileResponse
    from starlette.staticfiles import StaticFiles

    from regionreasoner.agent.ui import STATIC_DIR

    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")

    @app.get("/ui", include_in_schema=False)
    def ui() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
