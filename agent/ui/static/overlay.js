// Regions drawn over the displayed image: an <svg id="overlay"> laid exactly over <img id="image">.
//
// Coordinates: the API gives boxes and points in ORIGINAL image pixels (continuous xyxy, x2/y2 exclusive), and the
// image is displayed scaled to fit the page.  The SVG is sized in CSS pixels like the displayed image, and every
// coordinate is multiplied by sx = displayed width / natural width (sy likewise), so labels and strokes keep their
// size whatever the zoom.  A ResizeObserver redraws when the displayed size changes.  Masks are decoded once at
// their own size into a PNG and stretched over the displayed image by the same factors.

import { decodeRle, maskToDataUrl } from "./rle.js";

const SVG = "http://www.w3.org/2000/svg";

/** The colours of agent/render.py's PALETTE, cycled by region number, so the page matches the rendered PNG. */
export const PALETTE = [
  [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [0, 128, 128], [170, 110, 40],
];

export function regionColour(id) {
  const n = Number.parseInt(id.slice(1), 10);
  return PALETTE[(n - 1) % PALETTE.length];
}

export function rgb(c) {
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

function el(name, attrs) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export class Overlay {
  /** `handlers`: {onEnter(id), onLeave(id), onClick(id)}. */
  constructor(svg, img, handlers) {
    this.svg = svg;
    this.img = img;
    this.handlers = handlers;
    this.regions = [];
    this.masks = new Map(); // "R1:<counts prefix>" -> data URL (or an Error when it could not be decoded)
    new ResizeObserver(() => this.draw()).observe(img);
    img.addEventListener("load", () => this.draw());
  }

  /** Show these regions (those found on the displayed image version) and redraw. */
  setRegions(regions) {
    this.regions = regions;
    this.draw();
  }

  /** Mark regions (e.g. those of a hovered turn) with the class "lit": their shapes and their labels. */
  highlight(ids) {
    for (const g of this.svg.querySelectorAll("[data-region]")) g.classList.toggle("lit", ids.includes(g.dataset.region));
  }

  maskUrl(region) {
    const key = `${region.id}:${region.image}:${JSON.stringify(region.mask.counts).slice(0, 64)}`;
    if (!this.masks.has(key)) {
      try {
        this.masks.set(key, maskToDataUrl(decodeRle(region.mask), regionColour(region.id), 0.4));
      } catch (err) {
        this.masks.set(key, err);
      }
    }
    return this.masks.get(key);
  }

  draw() {
    const { img, svg } = this;
    svg.replaceChildren();
    const w = img.clientWidth;
    const h = img.clientHeight;
    if (!img.naturalWidth || !w) {
      svg.setAttribute("width", 0);
      svg.setAttribute("height", 0);
      return;
    }
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    const sx = w / img.naturalWidth; // original pixels -> displayed CSS pixels
    const sy = h / img.naturalHeight;
    // Two layers: shapes (masks, boxes, points), then every label above all shapes, so that no box hides a label.
    // Shapes: big regions first, so that a small region inside a big one stays on top and can be hovered.
    const shapes = el("g", { class: "shapes" });
    const area = (r) => (r.box[2] - r.box[0]) * (r.box[3] - r.box[1]);
    for (const region of [...this.regions].sort((a, b) => area(b) - area(a))) {
      shapes.append(this.wire(this.shapes(region, sx, sy, w, h), region));
    }
    // Labels: placed in id order (R1 gets its preferred place), drawn in reverse so that where labels must overlap
    // the lower-numbered one is on top.
    const labels = el("g", { class: "labels" });
    const placed = [];
    const byNumber = [...this.regions].sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)));
    const groups = byNumber.map((region) => this.wire(this.label(region, sx, sy, w, h, placed), region));
    labels.append(...groups.reverse());
    svg.append(shapes, labels);
  }

  /** <g class="region" data-region="R1">: the mask, box and point of a region, in displayed pixels. */
  shapes(region, sx, sy, w, h) {
    const colour = rgb(regionColour(region.id));
    const g = el("g", { class: "region", "data-region": region.id, "data-turn": region.turn });
    g.style.setProperty("--colour", colour);
    const title = el("title", {});
    title.textContent = `${region.id}${region.label ? ` ${region.label}` : ""} (turn ${region.turn + 1}): click to cite`;
    g.append(title);
    if (region.mask) {
      const [mh, mw] = region.mask.size;
      const url = mh === this.img.naturalHeight && mw === this.img.naturalWidth ? this.maskUrl(region) : null;
      if (typeof url === "string") {
        g.append(el("image", { class: "mask", href: url, x: 0, y: 0, width: w, height: h, preserveAspectRatio: "none" }));
        g.dataset.mask = "drawn";
      } else {
        // A mask that does not fit the image (or does not decode) is not drawn; the reason is on the element.
        g.dataset.mask = url instanceof Error ? `undecodable: ${url.message}` : `size ${mh}x${mw} is not the image's`;
      }
    }
    const [x1, y1, x2, y2] = region.box;
    const width = Math.max(1, (x2 - x1) * sx); // a sub-pixel box still shows as a 1 px mark
    const height = Math.max(1, (y2 - y1) * sy);
    g.append(el("rect", { class: "box", x: x1 * sx, y: y1 * sy, width, height, stroke: colour }));
    if (region.point) {
      g.append(el("circle", { class: "point", cx: region.point[0] * sx, cy: region.point[1] * sy, r: 4, fill: colour }));
    }
    return g;
  }

  /**
   * <g class="label" data-region="R1">: the region's name in a tag, placed near its box without covering the tags
   * placed before it (`placed`, updated): above the box, below it, inside it, then further along those rows.  A tag
   * moved away from the box gets a thin leader line to the box's corner.  Always inside the displayed image.
   */
  label(region, sx, sy, w, h, placed) {
    const colour = rgb(regionColour(region.id));
    const lw = 8 + 8 * region.id.length;
    const lh = 16;
    const [x1, y1, x2, y2] = region.box;
    const bx = x1 * sx;
    const by = y1 * sy;
    const clampX = (x) => Math.min(Math.max(0, x), Math.max(0, w - lw));
    const clampY = (y) => Math.min(Math.max(0, y), Math.max(0, h - lh));
    const rows = [by - lh, y2 * sy, by, by - 2 * lh, y2 * sy + lh].map(clampY);
    const candidates = [];
    for (let step = 0; step <= 12; step += 1) {
      for (const row of rows) {
        for (const dx of step ? [step * lw, -step * lw] : [0]) candidates.push([clampX(bx + dx), row]);
      }
    }
    const free = ([x, y]) => placed.every((p) => x + lw <= p[0] || p[0] + p[2] <= x || y + lh <= p[1] || p[1] + p[3] <= y);
    const [lx, ly] = candidates.find(free) || candidates[0];
    placed.push([lx, ly, lw, lh]);
    const g = el("g", { class: "label", "data-region": region.id, tabindex: 0, role: "button",
      "aria-label": `${region.id}, found by turn ${region.turn + 1}: click to cite it` });
    if (Math.abs(lx - clampX(bx)) > lw / 2 || Math.abs(ly - rows[0]) > lh) {
      const cx = lx + lw / 2 < bx ? lx + lw : lx; // the tag's side nearest the box
      const cy = ly + lh / 2 < by ? ly + lh : ly;
      g.append(el("line", { class: "leader", x1: cx, y1: cy, x2: bx, y2: by, stroke: colour }));
    }
    g.append(el("rect", { x: lx, y: ly, width: lw, height: lh, rx: 3, fill: colour }));
    const text = el("text", { x: lx + 4, y: ly + 12 });
    text.textContent = region.id;
    g.append(text);
    return g;
  }

  /** Hover, focus, click and Enter/Space on a region's shapes or label. */
  wire(g, region) {
    const { onEnter, onLeave, onClick } = this.handlers;
    const enter = () => {
      this.highlight([region.id]);
      onEnter(region.id);
    };
    const leave = () => {
      this.highlight([]);
      onLeave(region.id);
    };
    g.addEventListener("mouseenter", enter);
    g.addEventListener("mouseleave", leave);
    g.addEventListener("focus", enter);
    g.addEventListener("blur", leave);
    g.addEventListener("click", () => onClick(region.id));
    g.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        onClick(region.id);
      }
    });
    return g;
  }
}
