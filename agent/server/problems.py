"""Errors as RFC 9457 problem bodies (``application/problem+json``), never a stack trace.

Every error the server answers goes through :func:`problem_response`: a :class:`RegionReasonerError` maps to a
status by its class (the most specific listed base wins), anything else is a 500 whose body says only that an
internal error happened (the traceback goes to the log, with the request id).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from regionreasoner.core import errors as E

__all__ = [
    "PROBLEM_CONTENT",
    "PROBLEM_MEDIA",
    "PROBLEM_RESPONSES",
    "AuthError",
    "BodyTooLargeError",
    "NoGeneratorError",
    "OverloadedError",
    "Problem",
    "ServerError",
    "TimeoutError_",
    "UnavailableError",
    "problem_response",
    "status_of",
]

logger = logging.getLogger(__name__)


class ServerError(E.RegionReasonerError):
    """An error of the HTTP layer itself (auth, limits, overload); ``status`` is its HTTP status."""

    status = 400


class AuthError(ServerError):
    """No bearer token, or an unknown one."""

    status = 401


class BodyTooLargeError(ServerError):
    """The request body is larger than ``max_body_bytes``."""

    status = 413


class OverloadedError(ServerError):
    """Every turn slot is busy and the queue is full (or the wait timed out): retry after ``retry_after`` seconds."""

    status = 429

    def __init__(self, message: str, *, hint: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class TimeoutError_(ServerError):
    """The turn did not finish within ``turn_timeout_s`` (it goes on, and is stored when it finishes)."""

    status = 504


class UnavailableError(ServerError):
    """The server is shutting down, or still loading."""

    status = 503


class NoGeneratorError(ServerError):
    """The server has no image generator configured, so it cannot inpaint."""

    status = 409


# Most specific first: the first class in this list that the error is an instance of gives the status.
_STATUS: list[tuple[type[BaseException], int]] = [
    (E.ImageTooLargeError, 413),
    (E.PromptTooLongError, 422),
    (E.NotFoundError, 404),
    (E.TurnConflictError, 409),
    (E.InputError, 422),
    (E.PolicyError, 502),
    (E.ToolError, 502),
    (E.StorageError, 503),
    (E.ModelLoadError, 503),
    (E.DependencyMissingError, 500),
    (E.ConfigError, 500),
]


class Problem(BaseModel):
    """An error body (RFC 9457) with the project's ``kind`` (the error class name) and ``hint`` (the fix)."""

    type: str = Field(default="about:blank", description="a URI naming the problem type")
    title: str = Field(description="short summary of the status")
    status: int = Field(description="the HTTP status")
    detail: str = Field(description="what went wrong, for a person")
    kind: str = Field(description="the error class, e.g. InputError, DialogueNotFoundError")
    hint: str | None = Field(default=None, description="how to fix it")
    turn: int | None = Field(default=None, description="0-based index of the turn recorded as failed, if any")


PROBLEM_MEDIA = "application/problem+json"
PROBLEM_CONTENT: dict[str, Any] = {PROBLEM_MEDIA: {"schema": {"$ref": "#/components/schemas/Problem"}}}
"""An OpenAPI ``content`` entry: a Problem body (create_app adds the Problem schema to the components)."""

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": PROBLEM_CONTENT}
    for status, text in [
        (400, "a malformed request (e.g. broken multipart data)"),
        (401, "no or unknown bearer token"),
        (403, "an image path outside the server's image roots"),
        (404, "no such dialogue (or not yours), turn, region or version"),
        (409, "a conflicting turn or an unavailable tool"),
        (413, "body or image too large"),
        (422, "invalid input"),
        (500, "internal error (no details: see the server log under the request id)"),
        (429, "busy: retry after Retry-After seconds"),
        (502, "the model backend failed; the turn is recorded as failed"),
        (503, "storage or model unavailable, or shutting down"),
        (504, "the turn took longer than the server waits; it is stored when done"),
    ]
}
"""Documented error answers, for the OpenAPI schema of every /v1 route."""

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def status_of(exc: BaseException) -> int:
    """The HTTP status for ``exc``."""
    if isinstance(exc, ServerError):
        return exc.status
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _detail(exc: E.RegionReasonerError) -> str:
    # RegionReasonerError folds the hint into its message; the body carries it separately.
    text = str(exc)
    suffix = f" ({exc.hint})" if exc.hint else ""
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text


def problem_response(exc: BaseException, *, request_id: str | None = None) -> JSONResponse:
    """The problem+json response for ``exc`` (a 500 for anything not raised on purpose, with no details)."""
    status = status_of(exc)
    headers: dict[str, str] = {}
    if (isinstance(exc, E.RegionReasonerError) and status < 500) or isinstance(exc, (ServerError, E.PolicyError)):
        assert isinstance(exc, E.RegionReasonerError)
        body = Problem(
            title=_TITLES.get(status, "Error"),
            status=status,
            detail=_detail(exc)[:2000],
            kind=type(exc).__name__,
            hint=exc.hint,
        )
        turn = getattr(exc, "turn", None)
        if turn is not None and isinstance(getattr(turn, "index", None), int):
            body.turn = turn.index
    elif isinstance(exc, E.RegionReasonerError):
        # A 5xx of ours (storage down, model missing): the class and hint help an operator; the message may hold
        # paths or URLs, so it goes to the log only.
        logger.error("request %s failed: %s", request_id, exc)
        body = Problem(
            title=_TITLES.get(status, "Error"),
            status=status,
            detail=f"the server could not serve this request ({type(exc).__name__}); see its log, request {request_id}",
            kind=type(exc).__name__,
            hint=exc.hint,
        )
    else:
        logger.exception("request %s failed with an unexpected error", request_id, exc_info=exc)
        body = Problem(
            title=_TITLES[500],
            status=500,
            detail=f"internal error; the server's log has the details under request {request_id}",
            kind="InternalError",
        )
    if isinstance(exc, OverloadedError):
        headers["Retry-After"] = str(exc.retry_after)
    if request_id:
        headers["X-Request-Id"] = request_id
    headers["X-Problem-Kind"] = body.kind  # the request middleware counts errors by it
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=body.status, headers=headers, media_type=PROBLEM_MEDIA
    )
