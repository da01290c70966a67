"""The picture the demo talks about: a small scene the project draws itself, with known object boxes."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from regionreasoner.core.geometry import Box

__all__ = ["DemoObject", "demo_scene"]


@dataclass(frozen=True)
class DemoObject:
    """One drawn object: a name for questions and its exact box in image pixels."""

    name: str
    box: Box


def demo_scene(width: int = 640, height: int = 480) -> tuple[Image.Image, list[DemoObject]]:
    """A park-like scene (sky, grass, a sun, a tree, a red ball, a blue box, a yellow kite) and its objects.

    Boxes are exact: each shape is drawn inside the box listed for it.  Sizes are in pixels.
    """
    img = Image.new("RGB", (width, height), (135, 206, 235))
    draw = ImageDraw.Draw(img)
    sx, sy = width / 640, height / 480
    horizon = round(300 * sy)
    draw.rectangle([0, horizon, width, height], fill=(80, 170, 80))

    def box(x1: float, y1: float, x2: float, y2: float) -> Box:
        return Box(round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy))

    objects = [
        DemoObject("sun", box(500, 30, 590, 120)),
        DemoObject("tree", box(60, 140, 200, 360)),
        DemoObject("red ball", box(250, 330, 320, 400)),
        DemoObject("blue box", box(360, 300, 470, 410)),
        DemoObject("yellow kite", box(300, 60, 380, 150)),
    ]
    sun, tree, ball, blue, kite = (o.box for o in objects)
    draw.ellipse(list(sun), fill=(255, 215, 0))
    trunk_w = (tree.x2 - tree.x1) / 5
    cx = (tree.x1 + tree.x2) / 2
    draw.rectangle(
        [cx - trunk_w / 2, tree.y1 + (tree.y2 - tree.y1) * 0.55, cx + trunk_w / 2, tree.y2 - 1], fill=(110, 70, 30)
    )
    draw.ellipse([tree.x1, tree.y1, tree.x2 - 1, tree.y1 + (tree.y2 - tree.y1) * 0.7], fill=(30, 110, 40))
    draw.ellipse([ball.x1, ball.y1, ball.x2 - 1, ball.y2 - 1], fill=(220, 30, 30))
    draw.rectangle([blue.x1, blue.y1, blue.x2 - 1, blue.y2 - 1], fill=(40, 70, 200))
    mx, my = (kite.x1 + kite.x2) / 2, (kite.y1 + kite.y2) / 2
    draw.polygon([(mx, kite.y1), (kite.x2 - 1, my), (mx, kite.y2 - 1), (kite.x1, my)], fill=(250, 220, 40))
    return img, objects
