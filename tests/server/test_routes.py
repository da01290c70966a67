"""The HTTP API end to end over a scripted agent: dialogues, turns, regions, images, traces, problems."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from server_helpers import ALICE, auth, png_data_url


def _start(client: TestClient, token: str = ALICE) -> str:
    r = client.post("/v1/dialogues", json={"image": png_data_url(), "title": "shapes"}, headers=auth(token))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_two_turns_find_and_cite_regions(client: TestClient) -> None:
    d = _start(client)
    r1 = client.post(
        f"/v1/dialogues/{d}/turns", json={"question": "the shape right of bbox=[10, 10, 90, 90]"}, headers=auth(ALICE)
    )
    assert r1.status_code == 200, r1.text
    assert [r["id"] for r in r1.json()["regions"]] == ["R1"]
    r2 = client.post(f"/v1/dialogues/{d}/turns", json={"question": "the shape right of R1"}, headers=auth(ALICE))
    assert r2.status_code == 200, r2.text
    assert r2.json()["referenced"] == ["R1"] and [r["id"] for r in r2.json()["regions"]] == ["R2"]
    box = r1.json()["regions"][0]["box"]
    assert [round(v) for v in box] == [160, 24, 224, 72]  # 840-frame answer mapped back to the 320x240 image
    regions = client.get(f"/v1/dialogues/{d}/regions", headers=auth(ALICE)).json()["regions"]
    assert [r["id"] for r in regions] == ["R1", "R2"]
    turns = client.get(f"/v1/dialogues/{d}/turns", headers=auth(ALICE)).json()["turns"]
    assert [t["index"] for t in turns] == [0, 1]
    one = client.get(f"/v1/dialogues/{d}/turns/1", headers=auth(ALICE)).json()
    assert one["sections"]["focus"] == "the cited shape"
    listing = client.get("/v1/dialogues", headers=auth(ALICE)).json()["dialogues"]
    assert [(x["id"], x["turns"], x["regions"]) for x in listing] == [(d, 2, 2)]


def test_images_render_crop_and_export(client: TestClient) -> None:
    d = _start(client)
    client.post(f"/v1/dialogues/{d}/turns", json={"question": "right of bbox=[10, 10, 90, 90]"}, headers=auth(ALICE))
    for path in (
        f"/v1/dialogues/{d}/render",
        f"/v1/dialogues/{d}/versions/0/image",
        f"/v1/dialogues/{d}/crop?box=0,0,50,40",
    ):
        r = client.get(path, headers=auth(ALICE))
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG", path
    assert client.get(f"/v1/dialogues/{d}/crop?box=50,0,10,40", headers=auth(ALICE)).status_code == 422
    assert client.get(f"/v1/dialogues/{d}/versions/3/image", headers=auth(ALICE)).status_code == 422
    bundle = client.get(f"/v1/dialogues/{d}/export", headers=auth(ALICE)).json()
    assert [r["id"] for r in bundle["regions"]] == ["R1"]
    trace_id = bundle["dialogue"]["turns"][0]["trace_id"]
    names = {s["name"] for s in bundle["traces"][trace_id]}
    assert "regionreasoner.turn" in names and "regionreasoner.node scene" in names


def test_trace_route_and_propagated_context(client: TestClient) -> None:
    d = _start(client)
    parent = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {**auth(ALICE), "traceparent": f"00-{parent}-00f067aa0ba902b7-01"}
    turn = client.post(
        f"/v1/dialogues/{d}/turns", json={"question": "right of bbox=[10, 10, 90, 90]"}, headers=headers
    ).json()
    assert turn["trace_id"] == parent  # the turn's spans joined the caller's trace
    spans = client.get(f"/v1/dialogues/{d}/turns/0/trace", headers=auth(ALICE)).json()["spans"]
    root = next(s for s in spans if s["name"] == "regionreasoner.turn")
    assert root["parent_id"] == "0x00f067aa0ba902b7"
    assert client.get(f"/v1/dialogues/{d}/turns/0/tools", headers=auth(ALICE)).json() == {"calls": []}


def test_streamed_turn_sends_deltas_then_the_turn(client: TestClient) -> None:
    d = _start(client)
    with client.stream(
        "POST", f"/v1/dialogues/{d}/turns:stream", json={"question": "right of bbox=[1, 1, 9, 9]"}, headers=auth(ALICE)
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events: list[tuple[str, str]] = []
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, line.split(":", 1)[1].strip()))
    kinds = [k for k, _ in events]
    assert "delta" in kinds and "node" in kinds and kinds[-1] == "turn"
    sections = {json.loads(v)["section"] for k, v in events if k == "delta"}
    assert {"scene", "think"} <= sections
    assert json.loads(events[-1][1])["regions"][0]["id"] == "R1"


def test_errors_are_problem_bodies_without_tracebacks(client: TestClient) -> None:
    r = client.get("/v1/dialogues/nope", headers=auth(ALICE))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["kind"] == "DialogueNotFoundError" and "Traceback" not in r.text
    r = client.post("/v1/dialogues", json={"image": png_data_url(), "extra": 1}, headers=auth(ALICE))
    assert r.status_code == 422 and r.json()["kind"] == "ValidationError"
    d = _start(client)
    r = client.post(f"/v1/dialogues/{d}/turns", json={"question": "the shape next to R7"}, headers=auth(ALICE))
    assert r.status_code == 404 and r.json()["kind"] == "RegionNotFoundError" and r.json()["hint"]
    assert client.get(f"/v1/dialogues/{d}/turns", headers=auth(ALICE)).json()["turns"] == []  # nothing stored
    r = client.post(
        f"/v1/dialogues/{d}/inpaint", json={"region": "R1", "prompt": "een groene ster"}, headers=auth(ALICE)
    )
    assert r.status_code == 409 and r.json()["kind"] == "NoGeneratorError"
    assert client.get("/nowhere").status_code == 404
    assert client.delete(f"/v1/dialogues/{d}", headers=auth(ALICE)).status_code == 204
    assert client.get(f"/v1/dialogues/{d}", headers=auth(ALICE)).status_code == 404


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    d = _start(client)
    client.post(f"/v1/dialogues/{d}/turns", json={"question": "right of bbox=[10, 10, 90, 90]"}, headers=auth(ALICE))
    client.get("/v1/dialogues/nope", headers=auth(ALICE))
    text = client.get("/metrics").text
    assert 'regionreasoner_turns_total{status="ok"} 1.0' in text
    assert "regionreasoner_turn_seconds_bucket" in text
    assert 'regionreasoner_errors_total{kind="DialogueNotFoundError"} 1.0' in text
    assert 'route="/v1/dialogues/{dialogue_id}/turns"' in text


def test_openapi_schema_lists_the_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/v1/dialogues", "/v1/dialogues/{dialogue_id}/turns", "/v1/dialogues/{dialogue_id}/turns:stream"} <= paths
    assert "Problem" in schema["components"]["schemas"]
