"""The web page (agent/ui/static) against the real server with the tiny model, in a headless Chromium.

Structural checks, not pixels: every region the API returned has an overlay inside the displayed image, placed at
its box scaled from original pixels to the displayed size; each turn panel expands into its four sections, citations,
usage, tool calls and trace timeline; hovering and clicking regions work; API errors reach the error line.
The tiny model is random but deterministic: on the synthetic scene below its first answer holds one box (R1), which
the test asserts, so the region clicks are always exercised.
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.ui, pytest.mark.slow]

QUESTIONS = ["find the red circle", "the shape left of R1"]
SECTIONS = ["scene", "focus", "think", "answer"]
TURN_TIMEOUT_MS = 240_000

# The regions whose label tag is the element under its own centre (not covered by another tag).
CLICKABLE_LABELS = """() => [...document.querySelectorAll("svg#overlay g.label")].filter((g) => {
    const r = g.querySelector("rect").getBoundingClientRect();
    const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return hit && hit.closest("g.label") === g;
}).map((g) => g.dataset.region)"""


def _scene_png() -> bytes:
    from regionreasoner.core.world import make_scene

    buffer = io.BytesIO()
    make_scene((7, 1), size=(320, 240)).image.save(buffer, format="PNG")
    return buffer.getvalue()


def _get(base: str, path: str) -> Any:
    with urllib.request.urlopen(f"{base}{path}", timeout=30) as response:
        return json.loads(response.read())


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not displayed"
    return box


def _inside(inner: dict[str, float], outer: dict[str, float], tol: float = 3.0) -> bool:
    return (
        inner["x"] >= outer["x"] - tol
        and inner["y"] >= outer["y"] - tol
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + tol
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + tol
    )


def _idle(base: str) -> None:
    """Wait until the server runs no turn (a turn goes on after its client left, e.g. when a test failed)."""
    deadline = time.monotonic() + TURN_TIMEOUT_MS / 1000
    while (ready := _get(base, "/readyz"))["running"] or ready["waiting"]:
        assert time.monotonic() < deadline, f"the server is still running turns: {ready}"
        time.sleep(0.2)


def _ask(page: Any, index: int, question: str) -> None:
    """Ask through the form; check that section text streams into the pending panel before the stored turn lands."""
    page.fill("#question", question)
    page.click("#ask")
    page.wait_for_function(
        """() => !document.querySelector("#error").hidden
            || [...document.querySelectorAll(".turn[data-pending] .section pre")].some((p) => p.textContent.length)"""
    )
    assert page.is_hidden("#error"), page.inner_text("#error")
    # A turn of the tiny model takes seconds; on a machine shared with other test lanes it can take minutes.
    page.wait_for_selector(f".turn[data-index='{index}']:not([data-pending])", timeout=TURN_TIMEOUT_MS)
    page.wait_for_selector("body[data-busy='false']")


def _column_major_runs(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE counts, computed plainly: runs of the column-major pixels, background first."""
    flat = mask.flatten(order="F")
    counts, value, run = [], False, 0
    for pixel in flat:
        if bool(pixel) == value:
            run += 1
        else:
            counts.append(run)
            value, run = not value, 1
    counts.append(run)
    return counts


def test_rle_decoding_matches_pycocotools(ui: SimpleNamespace) -> None:
    from regionreasoner.core.masks import encode_rle

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:480, :640]
    masks = {
        "speckle": rng.random((37, 53)) > 0.6,  # short runs: many negative differences in the string form
        "circle": (yy - 200) ** 2 + (xx - 300) ** 2 < 150**2,  # long runs: several 5-bit groups per number
        "starts with foreground": np.pad(np.ones((3, 4), bool), ((0, 5), (0, 6)))[::-1, ::-1].copy(),
        "empty": np.zeros((9, 7), bool),
        "full": np.ones((9, 7), bool),
    }
    cases = []
    for name, mask in masks.items():
        h, w = mask.shape
        cases.append({"name": f"{name} (string)", "size": [h, w], "counts": encode_rle(mask).counts})
        cases.append({"name": f"{name} (list)", "size": [h, w], "counts": _column_major_runs(mask)})
    decoded = ui.page.evaluate(
        """async (cases) => {
            const rle = await import("/ui/static/rle.js");
            return cases.map((c) => Array.from(rle.decodeRle(c).data).join(""));
        }""",
        cases,
    )
    for case, got in zip(cases, decoded, strict=True):
        mask = masks[case["name"].rsplit(" (", 1)[0]]
        want = "".join("1" if v else "0" for v in mask.flatten(order="C"))
        assert got == want, case["name"]
    refused = ui.page.evaluate(
        """async () => {
            const { decodeRle } = await import("/ui/static/rle.js");
            const out = [];
            const bad = [{size: [2, 2], counts: [1, 2]}, {size: [2, 2], counts: [1, 4]}, {size: [4, 4], counts: "0i"}];
            for (const rle of bad) {
                try { decodeRle(rle); out.push("decoded"); } catch (err) { out.push(err.message); }
            }
            return out;
        }"""
    )
    assert "decoded" not in refused, refused
    assert ui.errors == []


def test_masks_are_drawn_over_the_displayed_image(ui: SimpleNamespace) -> None:
    """A decoded mask is stretched over the image shown at twice its size; a mask of another size is left out."""
    from regionreasoner.core.masks import encode_rle

    yy, xx = np.mgrid[:240, :320]
    mask = ((yy - 100) ** 2 + (xx - 200) ** 2 < 40**2) | ((xx < 30) & (yy > 200))
    png = "data:image/png;base64," + base64.b64encode(_scene_png()).decode()
    common = {"turn": 0, "image": "a" * 64, "point": [200.0, 100.0]}
    regions = [
        {
            **common,
            "id": "R1",
            "box": [160.0, 60.0, 240.0, 140.0],
            "mask": {"size": [240, 320], "counts": encode_rle(mask).counts},
        },
        {**common, "id": "R2", "box": [0.0, 200.0, 30.0, 240.0], "mask": {"size": [10, 10], "counts": [100]}},
    ]
    drawn = ui.page.evaluate(
        """async ({ png, regions }) => {
            const { Overlay } = await import("/ui/static/overlay.js");
            const stage = document.createElement("div");
            stage.style.cssText = "position: relative; width: 640px";
            const img = new Image();
            img.style.cssText = "display: block; width: 640px";
            const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
            svg.style.cssText = "position: absolute; left: 0; top: 0";
            stage.append(img, svg);
            document.body.prepend(stage);
            await new Promise((resolve) => { img.onload = resolve; img.src = png; });
            new Overlay(svg, img, { onEnter() {}, onLeave() {}, onClick() {} }).setRegions(regions);
            const maskImage = svg.querySelector("g.region[data-region='R1'] image.mask");
            // Read the drawn mask back at its own size: its opaque pixels, row-major.
            const back = new Image();
            await new Promise((resolve) => { back.onload = resolve; back.src = maskImage.getAttribute("href"); });
            const canvas = document.createElement("canvas");
            canvas.width = back.width;
            canvas.height = back.height;
            const ctx = canvas.getContext("2d");
            ctx.drawImage(back, 0, 0);
            const alpha = ctx.getImageData(0, 0, back.width, back.height).data.filter((_, i) => i % 4 === 3);
            return {
                size: [back.height, back.width],
                shown: ["width", "height"].map((k) => Number(maskImage.getAttribute(k))),
                pixels: Array.from(alpha, (a) => (a ? "1" : "0")).join(""),
                box: ["x", "y", "width", "height"].map((k) => svg.querySelector("rect.box")[k].baseVal.value),
                R1: svg.querySelector("g.region[data-region='R1']").dataset.mask,
                R2: svg.querySelector("g.region[data-region='R2']").dataset.mask,
                R2image: svg.querySelectorAll("g.region[data-region='R2'] image").length,
            };
        }""",
        {"png": png, "regions": regions},
    )
    assert drawn["size"] == [240, 320] and drawn["shown"] == [640, 480]
    assert drawn["pixels"] == "".join("1" if v else "0" for v in mask.flatten())
    assert drawn["box"] == [320, 120, 160, 160]  # original pixels x 2
    assert drawn["R1"] == "drawn"
    assert drawn["R2"].startswith("size 10x10") and drawn["R2image"] == 0
    assert ui.errors == []


def test_sse_parser_is_independent_of_chunking(ui: SimpleNamespace) -> None:
    stream = (
        'event: delta\ndata: {"section": "scene", "text": "a red \\u5706"}\n\n'
        ": keep-alive ping\n\n"
        'event: node\r\ndata: {"node":\r\ndata: "scene"}\r\n\r\n'
        "event: no data\n\n"
        "data: plain\rid: 7\r\r"
        "event: cut\ndata: never finished"
    )
    want = [
        ["delta", '{"section": "scene", "text": "a red \\u5706"}'],
        ["node", '{"node":\n"scene"}'],
        ["message", "plain"],
    ]
    splits = ui.page.evaluate(
        """async (stream) => {
            const { SseParser } = await import("/ui/static/sse.js");
            const runs = [];
            for (let cut = 0; cut <= stream.length; cut += 1) {  // every split into two chunks
                const p = new SseParser();
                const events = [...p.feed(stream.slice(0, cut)), ...p.feed(stream.slice(cut)), ...p.finish()];
                runs.push(events.map((e) => [e.event, e.data]));
            }
            const p = new SseParser();  // one character at a time
            runs.push([...stream].flatMap((c) => p.feed(c)).concat(p.finish()).map((e) => [e.event, e.data]));
            return runs;
        }""",
        stream,
    )
    assert len(splits) == len(stream) + 2
    for events in splits:
        assert events == want
    assert ui.errors == []


def test_a_dialogue_in_the_page(ui: SimpleNamespace, tmp_path: Path) -> None:
    page, base = ui.page, ui.base
    assert page.is_hidden("#error"), page.inner_text("#error")

    # Upload: the image shows (scaled to the column), with its version thumbnail.
    page.set_input_files("#image-input", files=[{"name": "scene.png", "mimeType": "image/png", "buffer": _scene_png()}])
    page.wait_for_selector("#versions .version.current[data-version='0']")
    page.wait_for_function("() => document.querySelector('#image').naturalWidth === 320")
    page.wait_for_function("() => document.querySelector('#versions .version img').naturalWidth === 320")
    dialogue_id = page.get_attribute("#dialogue-info", "data-dialogue")
    assert dialogue_id
    assert page.evaluate("location.hash") == f"#dialogue={dialogue_id}"

    for index, question in enumerate(QUESTIONS):
        _ask(page, index, question)
    assert page.is_hidden("#error"), page.inner_text("#error")
    turns = _get(base, f"/v1/dialogues/{dialogue_id}/turns")["turns"]
    regions = _get(base, f"/v1/dialogues/{dialogue_id}/regions")["regions"]
    assert [t["question"] for t in turns] == QUESTIONS
    assert turns[0]["regions"], "the tiny model found no region in turn 1: pick another question or scene"
    assert turns[1]["referenced"] == ["R1"]

    # Every region has an overlay, inside the displayed image, at its box scaled to the displayed size.  The SVG lies
    # exactly on the image; shapes are checked by their geometry in it (bounding boxes would include the strokes).
    page.mouse.move(0, 0)
    image = _box(page, "#image")
    svg = _box(page, "svg#overlay")
    assert svg == pytest.approx(image, abs=0.5)
    scale_x, scale_y = image["width"] / 320, image["height"] / 240
    assert scale_x > 1.5, f"the 320 px image should be scaled up to the column, shown {image['width']} px wide"
    assert scale_y == pytest.approx(scale_x, rel=0.01)
    shown = page.eval_on_selector_all("svg#overlay g.region", "gs => gs.map((g) => g.dataset.region)")
    assert sorted(shown) == sorted(r["id"] for r in regions)
    for region in regions:
        group = f"svg#overlay g.region[data-region='{region['id']}']"
        assert _inside(_box(page, group), image), region["id"]
        assert _inside(_box(page, f"svg#overlay g.label[data-region='{region['id']}']"), image), region["id"]
        rect = page.eval_on_selector(
            f"{group} rect.box", "r => [r.x, r.y, r.width, r.height].map((v) => v.baseVal.value)"
        )
        x1, y1, x2, y2 = region["box"]
        assert rect[0] == pytest.approx(x1 * scale_x, abs=0.5)
        assert rect[1] == pytest.approx(y1 * scale_y, abs=0.5)
        assert rect[2] == pytest.approx(max(1.0, (x2 - x1) * scale_x), abs=0.5)
        assert rect[3] == pytest.approx(max(1.0, (y2 - y1) * scale_y), abs=0.5)
        if region["point"] is not None:
            dot = page.eval_on_selector(f"{group} circle.point", "c => [c.cx.baseVal.value, c.cy.baseVal.value]")
            assert dot == pytest.approx([region["point"][0] * scale_x, region["point"][1] * scale_y], abs=0.5)
        assert page.get_attribute(group, "data-mask") is None  # no segmenter: no mask
    turns_box = _box(page, "#turns")
    assert turns_box["x"] >= image["x"] + image["width"] - 1 or turns_box["y"] >= image["y"] + image["height"] - 1

    # Each turn expands into its sections (as stored), citations, problems, usage, tool calls and trace.
    assert page.locator(".turn").count() == 2
    page.click(".turn[data-index='0'] summary")  # only the newest turn starts open
    for turn in turns:
        panel = f".turn[data-index='{turn['index']}']"
        page.wait_for_selector(f"{panel} .tools[data-state='loaded']")
        page.wait_for_selector(f"{panel} .trace[data-state='loaded']")
        for name in SECTIONS:
            section = page.locator(f"{panel} .section[data-section='{name}']")
            assert section.is_visible()
            assert section.locator("pre").text_content() == (turn["sections"][name] or "")
        assert page.get_attribute(panel, "data-status") == turn["status"]
        assert page.get_attribute(panel, "data-regions") == " ".join(r["id"] for r in turn["regions"])
        assert str(turn["usage"]["generated_tokens"]) in page.inner_text(f"{panel} .usage")
        assert page.locator(f"{panel} .citations li").count() == len(turn["citations"])
        assert page.locator(f"{panel} .problems li").count() == len(turn["problems"])
        trace = _get(base, f"/v1/dialogues/{dialogue_id}/turns/{turn['index']}/trace")
        assert trace["spans"]
        assert page.locator(f"{panel} .timeline .span").count() == len(trace["spans"])
        for bar in page.locator(f"{panel} .timeline .bar").all():
            assert _inside(bar.bounding_box(), page.locator(f"{panel} .timeline").bounding_box())
        calls = _get(base, f"/v1/dialogues/{dialogue_id}/turns/{turn['index']}/tools")["calls"]
        assert page.locator(f"{panel} .tool-call").count() == len(calls)

    # Hovering R1 marks the turn that found it and the one that cites it; clicking region labels cites them.
    clickable = page.evaluate(CLICKABLE_LABELS)
    assert "R1" in clickable, f"R1's label is covered (clickable: {clickable})"
    page.hover("svg#overlay g.label[data-region='R1'] rect")
    assert page.eval_on_selector_all(".turn.found", "ts => ts.map((t) => t.dataset.index)") == ["0"]
    assert "1" in page.eval_on_selector_all(".turn.cited", "ts => ts.map((t) => t.dataset.index)")
    assert "lit" in (page.get_attribute("svg#overlay g.region[data-region='R1']", "class") or "")
    page.hover(".turn[data-index='0'] summary")  # and hovering a turn lights the regions it found
    lit = page.eval_on_selector_all("svg#overlay g.region.lit", "gs => gs.map((g) => g.dataset.region)")
    assert sorted(lit) == sorted(r["id"] for r in turns[0]["regions"])
    page.fill("#question", "")
    page.click("svg#overlay g.label[data-region='R1'] rect")
    assert page.input_value("#question") == "R1"
    other = next((r for r in clickable if r != "R1"), None)
    if other is not None:
        page.click(f"svg#overlay g.label[data-region='{other}'] rect")
        assert page.input_value("#question") == f"R1 {other}"

    # An error event in the stream (a cited region that does not exist) reaches the error line; no turn is added.
    page.fill("#question", "compare R99 with R1")
    page.click("#ask")
    page.wait_for_selector("#error:not([hidden])")
    page.wait_for_selector("body[data-busy='false']")
    assert "RegionNotFoundError" in page.inner_text("#error") and "R99" in page.inner_text("#error")
    assert page.locator(".turn").count() == 2

    # The inpaint form: a language fills its template; without a generator the server's 409 is shown with its hint.
    page.click("#error-close")
    page.select_option("#inpaint-region", "R1")
    page.select_option("#inpaint-language", "nl")
    assert page.input_value("#inpaint-prompt") == "vervang R1 door een groene ster"
    page.select_option("#inpaint-language", "fa")
    assert "R1" in page.input_value("#inpaint-prompt") and page.get_attribute("#inpaint-prompt", "dir") == "rtl"
    page.click("#inpaint-submit")
    page.wait_for_selector("#error:not([hidden])")
    error = page.inner_text("#error")
    assert "NoGeneratorError" in error and "409" in error and "hint:" in error

    # Downloads: the export JSON and the annotated PNG.
    with page.expect_download() as exported:
        page.click("#download-export")
    bundle = json.loads(Path(exported.value.path()).read_text())
    assert [t["question"] for t in bundle["dialogue"]["turns"]] == QUESTIONS
    with page.expect_download() as rendered:
        page.click("#download-render")
    assert Path(rendered.value.path()).read_bytes().startswith(b"\x89PNG")

    page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)
    assert (tmp_path / "ui.png").stat().st_size > 10_000
    assert ui.errors == []


def test_a_stored_dialogue_continues_and_the_token_is_sent(ui: SimpleNamespace) -> None:
    page, base = ui.page, ui.base
    _idle(base)
    stored = _get(base, "/v1/dialogues")["dialogues"]
    if not stored:  # run alone: make one through the API
        image = "data:image/png;base64," + base64.b64encode(_scene_png()).decode()
        request = urllib.request.Request(
            f"{base}/v1/dialogues",
            data=json.dumps({"image": image}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            stored = [json.loads(response.read())]
        page.click("#refresh-list")
        page.wait_for_selector("body[data-busy='false']")
    newest = stored[0]["id"]
    token = "t" * 24
    page.fill("#token", token)
    with page.expect_request(lambda r: "/v1/dialogues?" in r.url) as listed:
        page.locator("#token").blur()  # "change": the token is kept and the list reloaded with it
    assert listed.value.headers.get("authorization") == f"Bearer {token}"
    page.wait_for_selector("body[data-busy='false']")
    assert page.evaluate("localStorage.getItem('regionreasoner.token')") == token
    page.wait_for_selector(f"#dialogue-list option[value='{newest}']", state="attached")
    page.select_option("#dialogue-list", newest)
    page.click("#continue")
    page.wait_for_selector("body[data-busy='false']")
    assert page.is_hidden("#error"), page.inner_text("#error")
    page.wait_for_selector(f"#dialogue-info[data-dialogue='{newest}']")
    dialogue = _get(base, f"/v1/dialogues/{newest}")
    assert page.locator(".turn").count() == len(dialogue["turns"])
    found = [r["id"] for t in dialogue["turns"] for r in t["regions"]]
    shown = page.eval_on_selector_all("svg#overlay g.region", "gs => gs.map((g) => g.dataset.region)")
    assert sorted(shown) == sorted(found)
    assert page.is_hidden("#error"), page.inner_text("#error")
    assert ui.errors == []
