"""The answer JSON as a schema: pydantic models with the frame's bounds, and the JSON schema they export.

The answer of a turn is ``[{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}, ...]`` with integer coordinates in
the policy's frame (``0..Mw`` by ``0..Mh``).  :func:`answer_schema` is the JSON schema a server takes as a structured
output; :func:`validate_answer` checks a text against it (what "schema-valid" means in the tests).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model

__all__ = ["answer_schema", "validate_answer"]


@lru_cache(maxsize=64)
def _adapter(width: int, height: int, max_objects: int) -> TypeAdapter[Any]:
    x = Annotated[int, Field(ge=0, le=width, strict=True)]
    y = Annotated[int, Field(ge=0, le=height, strict=True)]
    item = create_model(
        "AnswerObject",
        __config__=ConfigDict(extra="forbid"),
        bbox_2d=(tuple[x, y, x, y], Field(description="xyxy in the policy's frame")),
        point_2d=(tuple[x, y], Field(description="a point inside the object")),
    )
    return TypeAdapter(Annotated[list[item], Field(min_length=1, max_length=max_objects)])


def answer_schema(bounds: tuple[int, int], max_objects: int = 8) -> dict[str, Any]:
    """The JSON schema of an answer in a frame of extent ``bounds`` = ``(Mw, Mh)``."""
    schema: dict[str, Any] = _adapter(bounds[0], bounds[1], max_objects).json_schema()
    return schema


def validate_answer(text: str, bounds: tuple[int, int], max_objects: int = 8) -> list[str]:
    """The schema violations of an answer JSON text (empty when it is schema-valid)."""
    try:
        _adapter(bounds[0], bounds[1], max_objects).validate_json(text)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return []
