"""Auth, ownership and input limits: one token never reaches another's dialogue; refused input stores nothing."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import ALICE, BOB, Made, auth, png_data_url

from regionreasoner.agent.server.settings import ServeSettings, load_tokens
from regionreasoner.core.errors import ConfigError


def _stored(made: Made) -> tuple[int, int]:
    """(dialogues, images) in the memory, counted from the database itself."""
    from sqlalchemy import text

    with made.agent.memory._db.engine.connect() as conn:
        return (
            int(conn.execute(text("select count(*) from dialogues")).scalar_one()),
            int(conn.execute(text("select count(*) from images")).scalar_one()),
        )


def test_no_or_unknown_token_is_401(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, auth("not-a-known-token-at-all")):
        r = client.get("/v1/dialogues", headers=headers)
        assert r.status_code == 401 and r.json()["kind"] == "AuthError", headers
    assert client.get("/healthz").status_code == 200  # operations routes stay open for probes


def test_a_token_cannot_read_or_write_another_tokens_dialogue(client: TestClient) -> None:
    d = client.post("/v1/dialogues", json={"image": png_data_url()}, headers=auth(ALICE)).json()["id"]
    client.post(f"/v1/dialogues/{d}/turns", json={"question": "right of bbox=[1, 1, 9, 9]"}, headers=auth(ALICE))
    reads = [
        "",
        "/turns",
        "/turns/0",
        "/turns/0/trace",
        "/turns/0/tools",
        "/regions",
        "/versions",
        "/render",
        "/versions/0/image",
        "/export",
        "/crop?box=0,0,9,9",
    ]
    for path in reads:
        r = client.get(f"/v1/dialogues/{d}{path}", headers=auth(BOB))
        assert r.status_code == 404 and r.json()["kind"] == "DialogueNotFoundError", path
        assert client.get(f"/v1/dialogues/{d}{path}", headers=auth(ALICE)).status_code == 200, path
    assert (
        client.post(f"/v1/dialogues/{d}/turns", json={"question": "next to R1"}, headers=auth(BOB)).status_code == 404
    )
    with client.stream("POST", f"/v1/dialogues/{d}/turns:stream", json={"question": "x R1"}, headers=auth(BOB)) as r:
        assert r.status_code == 404
    inpaint = {"region": "R1", "prompt": "a star"}
    assert client.post(f"/v1/dialogues/{d}/inpaint", json=inpaint, headers=auth(BOB)).status_code == 404
    assert client.delete(f"/v1/dialogues/{d}", headers=auth(BOB)).status_code == 404
    assert client.get("/v1/dialogues", headers=auth(BOB)).json()["dialogues"] == []
    # Bob cannot take Alice's id either, and is not told it exists.
    r = client.post("/v1/dialogues", json={"image": png_data_url(), "id": d}, headers=auth(BOB))
    assert r.status_code == 422 and "taken" in r.json()["detail"]
    assert len(client.get(f"/v1/dialogues/{d}/turns", headers=auth(ALICE)).json()["turns"]) == 1


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_oversized_bodies_bombs_and_outside_paths_are_refused_and_nothing_is_stored(
    make_app: Callable[..., Made], tmp_path: Path
) -> None:
    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (64, 48), "white").save(root / "ok.png")
    Image.new("RGB", (64, 48), "white").save(tmp_path / "secret.png")
    made = make_app(max_body_bytes=200_000, max_image_pixels=1_000_000, image_roots=(root,))
    with TestClient(made.app, raise_server_exceptions=False) as client:
        big = png_data_url()[:22] + "A" * 300_000
        r = client.post("/v1/dialogues", json={"image": big}, headers=auth(ALICE))
        assert r.status_code == 413 and r.json()["kind"] == "BodyTooLargeError"
        r = client.post("/v1/upload", files={"file": ("x.png", b"\0" * 300_000)}, headers=auth(ALICE))
        assert r.status_code == 413
        bomb = _png_claiming(50_000, 50_000)
        r = client.post("/v1/upload", files={"file": ("bomb.png", bomb, "image/png")}, headers=auth(ALICE))
        assert r.status_code == 413 and r.json()["kind"] == "ImageTooLargeError", r.text
        url = "data:image/png;base64," + base64.b64encode(bomb).decode()
        assert client.post("/v1/dialogues", json={"image": url}, headers=auth(ALICE)).status_code == 413
        for path in (str(tmp_path / "secret.png"), str(root / ".." / "secret.png"), "/etc/passwd"):
            r = client.post("/v1/dialogues", json={"image": path}, headers=auth(ALICE))
            assert r.status_code == 403 and r.json()["kind"] == "PathNotAllowedError", path
        (root / "link.png").symlink_to(tmp_path / "secret.png")
        assert (
            client.post("/v1/dialogues", json={"image": str(root / "link.png")}, headers=auth(ALICE)).status_code == 403
        )
        r = client.post("/v1/upload", files={"file": ("x.txt", b"not an image")}, headers=auth(ALICE))
        assert r.status_code == 422 and r.json()["kind"] == "ImageDecodeError"
        assert _stored(made) == (0, 0)  # nothing refused reached the memory
        ok = client.post("/v1/dialogues", json={"image": str(root / "ok.png")}, headers=auth(ALICE))
        assert ok.status_code == 201
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), "red").save(buffer, format="PNG")
        up = client.post("/v1/upload", files={"file": ("r.png", buffer.getvalue())}, headers=auth(ALICE))
        assert up.status_code == 201
        assert _stored(made) == (2, 2)


def test_tokens_are_parsed_and_weak_ones_refused() -> None:
    assert load_tokens("alice=" + "a" * 20 + "\n# note\n" + "b" * 20, origin="t") == {
        "a" * 20: "alice",
        "b" * 20: load_tokens("b" * 20, origin="t")["b" * 20],
    }
    with pytest.raises(ConfigError, match="16 characters"):
        load_tokens("alice=short", origin="t")
    with pytest.raises(ConfigError, match="none is configured"):
        ServeSettings()
