// Turn panels: one <article class="turn" data-index="i"> per turn, a <details> that expands into the four sections,
// citations, problems, usage, tool calls and the trace timeline.  Tool calls and the trace are fetched when the
// panel is first opened (GET .../turns/{i}/tools and .../trace).

import { blobUrl, getJson, routes } from "./api.js";
import { regionColour, rgb } from "./overlay.js";

export const SECTIONS = ["scene", "focus", "think", "answer"];

/** document.createElement with attributes, then children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function regionChip(id) {
  const chip = h("span", { class: "chip", "data-region": id }, id);
  chip.style.background = rgb(regionColour(id));
  return chip;
}

/** The ids a turn cites: the regions its question referenced and those its <think> citations matched. */
export function citedBy(turn) {
  const ids = new Set(turn.referenced || []);
  for (const c of turn.citations || []) if (c.region) ids.add(c.region);
  return [...ids];
}

function box(b) {
  return `[${b.map((v) => Math.round(v * 10) / 10).join(", ")}]`;
}

function sectionBlock(name, text) {
  const empty = text === null || text === undefined || text === "";
  return h(
    "section",
    { class: "section", "data-section": name, "data-empty": empty ? "true" : null },
    h("h4", {}, name),
    h("pre", { class: "text" }, empty ? "" : text),
  );
}

/** A panel for a turn being streamed: its question and four empty sections that deltas fill. */
export function pendingPanel(index, question) {
  return h(
    "article",
    { class: "turn pending", "data-index": index, "data-pending": "true" },
    h(
      "details",
      { open: true },
      h("summary", {}, h("span", { class: "turn-no" }, `#${index + 1}`), h("span", { class: "question" }, question),
        h("span", { class: "badge status running" }, "running")),
      h("div", { class: "body" }, SECTIONS.map((s) => sectionBlock(s, null))),
    ),
  );
}

/** Append a streamed delta to the pending panel's section. */
export function appendDelta(panel, section, text) {
  const block = panel.querySelector(`.section[data-section="${CSS.escape(section)}"]`);
  if (!block) return; // a section this page does not know: shown when the final turn arrives, as raw text
  block.removeAttribute("data-empty");
  block.querySelector(".text").textContent += text;
}

function citationList(turn) {
  const items = (turn.citations || []).map((c) =>
    h(
      "li",
      { class: c.verified ? "verified" : "unverified", "data-region": c.region || null },
      h("span", { class: "mark" }, c.verified ? "✓ verified" : "✗ not verified"),
      ` bbox=${box(c.model_box)} (model frame) = ${box(c.box)} px `,
      c.region ? regionChip(c.region) : h("em", {}, "matches no referenced region"),
    ),
  );
  return h("section", { class: "citations" }, h("h4", {}, `citations (${items.length})`),
    items.length ? h("ul", {}, items) : h("p", { class: "none" }, "none"));
}

function problemList(turn) {
  const items = (turn.problems || []).map((p) =>
    h("li", { class: `problem ${p.severity}` }, h("b", {}, `${p.severity} ${p.kind}`),
      p.section ? ` in <${p.section}>` : "", `: ${p.message}`),
  );
  return h("section", { class: "problems" }, h("h4", {}, `status ${turn.status}, problems (${items.length})`),
    items.length ? h("ul", {}, items) : h("p", { class: "none" }, "none"));
}

function usageTable(turn) {
  const u = turn.usage || {};
  const rows = [
    ["prompt tokens", u.prompt_tokens], ["cached tokens", u.cached_tokens], ["generated tokens", u.generated_tokens],
    ["model calls", u.model_calls], ["model time", `${Math.round(u.latency_ms ?? 0)} ms`],
    ["model", turn.model || "—"], ["frame", turn.frame], ["asked at", turn.created_at],
  ];
  return h("section", { class: "usage" }, h("h4", {}, "usage and timings"),
    h("table", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, String(v ?? "—"))))));
}

/** The final panel of a stored turn. `open`: expanded. `api`: {dialogueId} for the lazy parts. */
export function turnPanel(turn, { open, dialogueId, onError }) {
  const found = (turn.regions || []).map((r) => r.id);
  const cites = citedBy(turn);
  const tools = h("section", { class: "tools", "data-state": "idle" }, h("h4", {}, "tool calls"));
  const trace = h("section", { class: "trace", "data-state": "idle" }, h("h4", {}, "trace"));
  const details = h(
    "details",
    { open: open || null },
    h("summary", {},
      h("span", { class: "turn-no" }, `#${turn.index + 1}`),
      h("span", { class: "question" }, turn.question),
      h("span", { class: `badge status ${turn.status}` }, turn.status),
      found.length ? h("span", { class: "found" }, "→ ", found.map(regionChip)) : h("span", { class: "found none" }, "no region"),
      cites.length ? h("span", { class: "cites" }, "cites ", cites.map(regionChip)) : null),
    h("div", { class: "body" },
      turn.rendered_question !== turn.question ? h("p", { class: "rendered" }, "as the model saw it: ", h("code", {}, turn.rendered_question)) : null,
      SECTIONS.map((s) => sectionBlock(s, turn.sections?.[s])),
      citationList(turn), problemList(turn), usageTable(turn), tools, trace),
  );
  const panel = h("article", {
    class: "turn", "data-index": turn.index, "data-status": turn.status,
    "data-regions": found.join(" "), "data-cites": cites.join(" "),
  }, details);
  const load = () => {
    if (tools.dataset.state !== "idle") return;
    loadTools(tools, dialogueId, turn.index, onError);
    loadTrace(trace, dialogueId, turn.index);
  };
  details.addEventListener("toggle", () => details.open && load());
  if (open) queueMicrotask(load);
  return panel;
}

async function loadTools(section, dialogueId, index, onError) {
  section.dataset.state = "loading";
  try {
    const { calls } = await getJson(routes.tools(dialogueId, index));
    section.querySelector("h4").textContent = `tool calls (${calls.length})`;
    if (!calls.length) section.append(h("p", { class: "none" }, "none"));
    for (const call of calls) {
      const item = h("div", { class: "tool-call", "data-tool": call.name },
        h("b", {}, call.name), h("code", {}, JSON.stringify(call.arguments)),
        call.response !== null && call.response !== undefined ? h("pre", { class: "response" }, call.response) : null);
      if (call.crop) {
        const img = h("img", { class: "crop", alt: `zoom crop of ${call.name}` });
        item.append(img);
        blobUrl(call.crop).then((url) => { img.src = url; }, onError);
      }
      section.append(item);
    }
    section.dataset.state = "loaded";
  } catch (err) {
    section.dataset.state = "error";
    section.append(h("p", { class: "error" }, `could not load the tool calls: ${err.message}${err.hint ? ` (${err.hint})` : ""}`));
  }
}

async function loadTrace(section, dialogueId, index) {
  section.dataset.state = "loading";
  try {
    const { trace_id: traceId, spans } = await getJson(routes.trace(dialogueId, index));
    section.querySelector("h4").textContent = `trace ${traceId} (${spans.length} spans)`;
    section.append(timeline(spans));
    section.dataset.state = "loaded";
  } catch (err) {
    // Spans live in the server process that ran the turn; after a restart a turn's trace is gone (404).
    section.dataset.state = "error";
    section.append(h("p", { class: "error" }, `no trace: ${err.message}${err.hint ? ` (${err.hint})` : ""}`));
  }
}

/**
 * Spans (OpenTelemetry JSON: name, context.span_id, parent_id, start/end_time_unix_nano) as bars on one time axis,
 * children indented under their parents, in start order.  Times are nanoseconds; BigInt-free: a turn lasts seconds,
 * so differences to the first start fit a double exactly enough for drawing.
 */
export function timeline(spans) {
  const kept = spans.filter((s) => s.start_time_unix_nano && s.end_time_unix_nano);
  if (!kept.length) return h("p", { class: "none" }, "no finished spans");
  const t0 = Math.min(...kept.map((s) => s.start_time_unix_nano));
  const t1 = Math.max(...kept.map((s) => s.end_time_unix_nano));
  const total = Math.max(1, t1 - t0);
  const byId = new Map(kept.map((s) => [s.context?.span_id, s]));
  const depth = (s) => {
    let d = 0;
    for (let p = byId.get(s.parent_id); p && d < 20; p = byId.get(p.parent_id)) d += 1;
    return d;
  };
  const rows = [...kept].sort((a, b) => a.start_time_unix_nano - b.start_time_unix_nano).map((s) => {
    const ms = (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6;
    const bar = h("span", { class: `bar ${s.status?.status_code === "ERROR" ? "failed" : ""}` });
    bar.style.left = `${(100 * (s.start_time_unix_nano - t0)) / total}%`;
    bar.style.width = `${Math.max(0.3, (100 * (s.end_time_unix_nano - s.start_time_unix_nano)) / total)}%`;
    const name = h("span", { class: "span-name", title: s.name }, s.name);
    name.style.paddingLeft = `${depth(s)}em`;
    return h("li", { class: "span", "data-span": s.name, "data-parent": s.parent_id || null },
      name, h("span", { class: "lane" }, bar), h("span", { class: "ms" }, `${ms.toFixed(1)} ms`));
  });
  return h("ol", { class: "timeline", "data-total-ms": (total / 1e6).toFixed(1) }, rows);
}
