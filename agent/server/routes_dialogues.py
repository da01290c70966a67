"""Routes on dialogues, their regions, image versions and pictures (all synchronous: FastAPI runs them in threads)."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi import Path as PathParam
from PIL import Image

from regionreasoner.agent.api import DialogueSession
from regionreasoner.agent.server.deps import ServerState, principal, server_state
from regionreasoner.agent.server.problems import PROBLEM_RESPONSES, NoGeneratorError
from regionreasoner.agent.server.schemas import (
    CreateDialogue,
    DialogueList,
    DialogueSummary,
    ExportBundle,
    InpaintRequest,
    RegionList,
    SpanOut,
    VersionList,
)
from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.core.images import load_image
from regionreasoner.core.types import Dialogue, ImageVersion

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["dialogues"], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
Who = Annotated[str, Depends(principal)]
_PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "a PNG image"}}


def _png(image: Image.Image) -> Response:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png")


def _session(rr: ServerState, dialogue_id: str, who: str) -> DialogueSession:
    rr.own(dialogue_id, who)
    return rr.agent.dialogue(id=dialogue_id)


def _create(rr: ServerState, who: str, image_hash: str, title: str | None, dialogue_id: str | None) -> Dialogue:
    return rr.agent.memory.create_dialogue(image_hash, id=dialogue_id, title=title, owner=who)


@router.post("/dialogues", status_code=201, response_model=Dialogue, summary="start a dialogue (image as JSON)")
def create_dialogue(body: CreateDialogue, rr: State, who: Who) -> Dialogue:
    """Start a dialogue about an image sent as a data URL, a path under an image root, or a stored hash."""
    return _create(rr, who, rr.image_hash(body.image), body.title, body.id)


@router.post("/upload", status_code=201, response_model=Dialogue, summary="start a dialogue (image uploaded)")
def upload_dialogue(
    rr: State,
    who: Who,
    file: Annotated[UploadFile, File(description="the image file (PNG, JPEG, WebP, ...)")],
    title: Annotated[str | None, Form(max_length=200)] = None,
) -> Dialogue:
    """Start a dialogue about an uploaded image (multipart form, field ``file``)."""
    data = file.file.read(rr.settings.max_body_bytes + 1)
    loaded = load_image(data, max_pixels=rr.settings.max_image_pixels, max_bytes=rr.settings.max_body_bytes)
    return _create(rr, who, rr.agent.memory.put_image(loaded).hash, title, None)


@router.get("/dialogues", response_model=DialogueList, summary="list your dialogues")
def list_dialogues(
    rr: State,
    who: Who,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> DialogueList:
    """The caller's dialogues, newest first."""
    owner = who if rr.settings.auth else None
    found = rr.agent.memory.list_dialogues(limit, offset, owner=owner)
    return DialogueList(dialogues=[DialogueSummary.of(d) for d in found])


@router.get("/dialogues/{dialogue_id}", response_model=Dialogue, summary="a dialogue with its turns")
def get_dialogue(dialogue_id: str, rr: State, who: Who) -> Dialogue:
    """The dialogue, its turns and their regions."""
    rr.own(dialogue_id, who)
    return rr.agent.memory.dialogue(dialogue_id)


@router.delete("/dialogues/{dialogue_id}", status_code=204, summary="delete a dialogue")
def delete_dialogue(dialogue_id: str, rr: State, who: Who) -> Response:
    """Delete the dialogue with its turns, regions and versions (stored images stay)."""
    rr.own(dialogue_id, who)
    rr.agent.memory.delete_dialogue(dialogue_id)
    return Response(status_code=204)


@router.get("/dialogues/{dialogue_id}/regions", response_model=RegionList, summary="the dialogue's regions")
def regions(dialogue_id: str, rr: State, who: Who) -> RegionList:
    """R1, R2, ...: boxes and points in original pixels, masks as COCO RLE."""
    return RegionList(regions=_session(rr, dialogue_id, who).regions())


@router.get("/dialogues/{dialogue_id}/versions", response_model=VersionList, summary="the image versions")
def versions(dialogue_id: str, rr: State, who: Who) -> VersionList:
    """Image versions, 0 (the starting image) first; turns run on the newest."""
    return VersionList(versions=_session(rr, dialogue_id, who).versions())


@router.get(
    "/dialogues/{dialogue_id}/versions/{number}/image",
    response_class=Response,
    responses=_PNG,
    summary="one image version as PNG",
)
def version_image(dialogue_id: str, number: Annotated[int, PathParam(ge=0)], rr: State, who: Who) -> Response:
    """Image version ``number`` as PNG."""
    return _png(_session(rr, dialogue_id, who).image(version=number))


@router.get(
    "/dialogues/{dialogue_id}/render", response_class=Response, responses=_PNG, summary="the image with regions"
)
def render(
    dialogue_id: str,
    rr: State,
    who: Who,
    turn: Annotated[int | None, Query(ge=0)] = None,
    version: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The newest version (or ``version``, or the image of ``turn``) with its regions drawn."""
    return _png(_session(rr, dialogue_id, who).render(turn=turn, version=version))


def _box(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x1, y1, x2, y2 = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"box={text[:60]!r}", hint="send four numbers: box=x1,y1,x2,y2 (original pixels)") from None
    if not all(abs(v) < 1e9 for v in (x1, y1, x2, y2)) or not (x1 < x2 and y1 < y2):
        raise InputError(f"box={text[:60]!r} is empty, inverted or not finite", hint="use x1 < x2 and y1 < y2")
    return x1, y1, x2, y2


@router.get(
    "/dialogues/{dialogue_id}/crop", response_class=Response, responses=_PNG, summary="a crop of an image version"
)
def crop(
    dialogue_id: str,
    rr: State,
    who: Who,
    box: Annotated[str, Query(max_length=200, description="x1,y1,x2,y2 in original pixels")],
    version: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The part of an image version inside ``box`` (clipped to the image), as a zoom tool sees it."""
    image = _session(rr, dialogue_id, who).image(version=version)
    x1, y1, x2, y2 = _box(box)
    left, top = max(0, int(x1)), max(0, int(y1))
    right, bottom = min(image.width, int(-(-x2 // 1))), min(image.height, int(-(-y2 // 1)))
    if right <= left or bottom <= top:
        raise InputError(f"box={box[:60]!r} lies outside the {image.width}x{image.height} image", hint="check it")
    return _png(image.crop((left, top, right, bottom)))


@router.post(
    "/dialogues/{dialogue_id}/inpaint", status_code=201, response_model=ImageVersion, summary="repaint a region"
)
def inpaint(dialogue_id: str, body: InpaintRequest, rr: State, who: Who) -> ImageVersion:
    """Repaint a region after a prompt (any language); the result is the newest image version."""
    session = _session(rr, dialogue_id, who)
    try:
        return session.inpaint(body.region, body.prompt, seed=body.seed)
    except ConfigError as exc:
        raise NoGeneratorError(str(exc), hint=exc.hint) from None


@router.get("/dialogues/{dialogue_id}/export", response_model=ExportBundle, summary="the whole dialogue as JSON")
def export(dialogue_id: str, rr: State, who: Who) -> ExportBundle:
    """Turns, regions (masks RLE), versions and the traces of its turns that this process kept."""
    session = _session(rr, dialogue_id, who)
    dialogue = rr.agent.memory.dialogue(dialogue_id)
    traces: dict[str, list[SpanOut]] = {}
    for turn in dialogue.turns:
        kept = rr.spans.spans(turn.trace_id) if rr.spans is not None and turn.trace_id else None
        if kept is not None and turn.trace_id is not None:
            traces[turn.trace_id] = [SpanOut.model_validate(s) for s in kept]
    return ExportBundle(dialogue=dialogue, regions=session.regions(), versions=session.versions(), traces=traces)
