// The page's wiring: which dialogue and image version are shown, and what each control does.
// Everything it knows comes from the /v1 routes (api.js); drawing is in overlay.js, turn panels in turns.js.

import {
  ApiError, blobUrl, download, getJson, getToken, postJson, routes, setToken, streamTurn, uploadImage,
} from "./api.js";
import { setUpInpaint } from "./inpaint.js";
import { Overlay } from "./overlay.js";
import { appendDelta, citedBy, h, pendingPanel, turnPanel } from "./turns.js";

const $ = (sel) => document.querySelector(sel);

const state = {
  dialogue: null, // Dialogue: {id, title, image, created_at, turns: [Turn]}
  versions: [], // [ImageVersion], number 0 first
  shown: null, // the version number on display
  images: new Map(), // version number -> promise of an object URL of its PNG
  busy: 0, // actions running
};

// ---- the error line: every failed call ends here, with the problem's detail and hint -------------------------

function showError(err) {
  const box = $("#error");
  const kind = err instanceof ApiError && err.kind ? `${err.kind}: ` : "";
  const status = err instanceof ApiError && err.status ? ` [HTTP ${err.status}]` : "";
  box.querySelector(".message").textContent = `${kind}${err.message}${status}`;
  box.querySelector(".hint").textContent = err.hint ? `hint: ${err.hint}` : "";
  box.hidden = false;
  console.error(err);
}

function clearError() {
  $("#error").hidden = true;
}

/** Run a user action: clear the error line, mark the page busy, show whatever it throws. */
async function action(fn) {
  clearError();
  setBusy(+1);
  try {
    await fn();
  } catch (err) {
    showError(err instanceof Error ? err : new Error(String(err)));
  } finally {
    setBusy(-1);
  }
}

/** Count running actions (they may overlap: a list refresh while a dialogue opens); busy until all are done. */
function setBusy(change) {
  state.busy += change;
  const busy = state.busy > 0;
  document.body.dataset.busy = busy ? "true" : "false";
  const open = state.dialogue !== null;
  $("#ask").disabled = busy || !open;
  for (const sel of ["#download-export", "#download-render"]) $(sel).disabled = busy || !open;
}

function status(text) {
  $("#stream-status").textContent = text;
}

// ---- dialogues ------------------------------------------------------------------------------------------------

async function refreshList() {
  const { dialogues } = await getJson(routes.dialogues());
  const select = $("#dialogue-list");
  const keep = select.value; // a refresh keeps the user's pick when it is still listed
  select.replaceChildren(new Option(dialogues.length ? "— pick a stored dialogue —" : "— no stored dialogue —", ""));
  for (const d of dialogues) {
    const when = new Date(d.created_at).toLocaleString();
    select.append(new Option(`${d.title || d.id} · ${d.turns} turns, ${d.regions} regions · ${when}`, d.id));
  }
  if (dialogues.some((d) => d.id === keep)) select.value = keep;
}

async function upload(file) {
  const dialogue = await uploadImage(file, file.name);
  await openDialogue(dialogue.id, dialogue);
  refreshList().catch(showError);
}

async function openDialogue(id, known) {
  const dialogue = known || (await getJson(routes.dialogue(id)));
  // (A fetch that failed was shown in the error line when it failed; there is nothing to revoke for it.)
  for (const url of state.images.values()) url.then((u) => URL.revokeObjectURL(u), () => null);
  state.images.clear();
  state.dialogue = dialogue;
  state.versions = [];
  history.replaceState(null, "", `#dialogue=${encodeURIComponent(dialogue.id)}`);
  $("#dialogue-info").textContent = `dialogue ${dialogue.id}${dialogue.title ? ` · ${dialogue.title}` : ""}`;
  $("#dialogue-info").dataset.dialogue = dialogue.id;
  renderTurns();
  await loadVersions();
  setBusy(0); // enable the controls that need an open dialogue
}

/** Re-read the open dialogue after a turn; the versions too when the turn made one (or its outcome is unknown). */
async function refreshDialogue(turn) {
  state.dialogue = await getJson(routes.dialogue(state.dialogue.id));
  renderTurns();
  if (!turn || (turn.versions || []).length) await loadVersions();
  else drawRegions();
}

// ---- image versions -------------------------------------------------------------------------------------------

async function loadVersions() {
  const { versions } = await getJson(routes.versions(state.dialogue.id));
  state.versions = versions;
  const strip = $("#versions");
  strip.replaceChildren();
  for (const v of versions) {
    const what = v.number === 0 ? "start" : v.tool ? `${v.tool}${v.region ? ` ${v.region}` : ""}` : "sent";
    const thumb = h("img", { alt: `version ${v.number}` });
    const button = h("button", { type: "button", class: "version", "data-version": v.number,
      title: `version ${v.number}: ${what}${v.prompt ? ` — ${v.prompt}` : ""}` }, thumb, h("span", {}, `v${v.number} ${what}`));
    button.addEventListener("click", () => action(() => showVersion(v.number)));
    strip.append(button);
    imageUrl(v.number).then((url) => { thumb.src = url; }, showError);
  }
  await showVersion(versions.length - 1); // the newest: the one the next turn runs on
}

async function imageUrl(number) {
  if (!state.images.has(number)) {
    const url = blobUrl(routes.versionImage(state.dialogue.id, number));
    url.catch(() => state.images.delete(number)); // not cached: the next look tries again
    state.images.set(number, url);
  }
  return state.images.get(number);
}

async function showVersion(number) {
  const img = $("#image");
  const url = await imageUrl(number);
  state.shown = number;
  if (img.src !== url) {
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error(`image version ${number} did not load`));
      img.src = url;
    });
  }
  img.dataset.version = number;
  $("#stage").dataset.empty = "false";
  $("#stage").style.setProperty("--ratio", String(img.naturalWidth / img.naturalHeight));
  for (const b of document.querySelectorAll("#versions .version")) {
    b.classList.toggle("current", Number(b.dataset.version) === number);
  }
  const newest = number === state.versions.length - 1;
  $("#version-note").textContent = newest ? "" : `showing version ${number}; the next turn runs on the newest`;
  drawRegions();
}

// ---- regions and turns ----------------------------------------------------------------------------------------

function allRegions() {
  return state.dialogue ? state.dialogue.turns.flatMap((t) => t.regions || []) : [];
}

/** The regions found on the displayed version (a region belongs to the image it was found on). */
function drawRegions() {
  const version = state.versions[state.shown];
  const shown = version ? allRegions().filter((r) => r.image === version.image) : [];
  overlay.setRegions(shown);
  inpaint.setRegions(shown.map((r) => r.id));
  $("#regions-note").textContent = `${shown.length} region${shown.length === 1 ? "" : "s"} on this image`;
}

function renderTurns() {
  const list = $("#turns");
  const turns = state.dialogue.turns;
  list.replaceChildren(
    ...turns.map((t, i) => turnPanel(t, { open: i === turns.length - 1, dialogueId: state.dialogue.id, onError: showError })),
  );
  for (const panel of list.querySelectorAll(".turn")) wireTurn(panel);
}

function wireTurn(panel) {
  const ids = () => [...(panel.dataset.regions || "").split(" "), ...(panel.dataset.cites || "").split(" ")].filter(Boolean);
  panel.addEventListener("mouseenter", () => overlay.highlight(ids()));
  panel.addEventListener("mouseleave", () => overlay.highlight([]));
}

/** Hovering a region: mark the turns that cite it ("cited") and the one that found it ("found"). */
function hoverRegion(id) {
  for (const panel of document.querySelectorAll("#turns .turn")) {
    panel.classList.toggle("cited", id !== null && (panel.dataset.cites || "").split(" ").includes(id));
    panel.classList.toggle("found", id !== null && (panel.dataset.regions || "").split(" ").includes(id));
  }
  $("#hover-note").textContent = id ? hoverText(id) : "";
}

function hoverText(id) {
  const citing = state.dialogue.turns.filter((t) => citedBy(t).includes(id)).map((t) => `#${t.index + 1}`);
  return `${id}: ${citing.length ? `cited by turn ${citing.join(", ")}` : "not cited yet"} (click to cite it)`;
}

/** Clicking a region: put its name into the question at the caret, with spaces around it. */
function citeRegion(id) {
  const q = $("#question");
  const start = q.selectionStart ?? q.value.length;
  const end = q.selectionEnd ?? start;
  const before = q.value.slice(0, start);
  const after = q.value.slice(end);
  const text = `${before && !/\s$/.test(before) ? " " : ""}${id}${after && !/^\s/.test(after) ? " " : ""}`;
  q.value = before + text + after;
  q.focus();
  q.setSelectionRange(before.length + text.length, before.length + text.length);
}

// ---- asking: the turn streams into a pending panel, then the stored turn replaces it ----------------------------

async function ask(question) {
  const dialogue = state.dialogue;
  const panel = pendingPanel(dialogue.turns.length, question);
  $("#turns").append(panel);
  panel.scrollIntoView({ block: "nearest" });
  let turn = null;
  let problem = null;
  const nodes = [];
  status("asking…");
  try {
    await streamTurn(dialogue.id, question, (event, data) => {
      if (event === "delta") appendDelta(panel, data.section, data.text);
      else if (event === "node") {
        nodes.push(data.node);
        status(`done: ${nodes.join(" → ")}`);
      }
      else if (event === "turn") turn = data;
      else if (event === "error") problem = data;
    });
  } finally {
    status("");
    if (turn) $("#question").value = "";
    // Re-read what the server stored (a failed turn may be recorded even without a turn event), then redraw.
    await refreshDialogue(turn);
  }
  if (problem) throw new ApiError(problem.status || 0, problem);
  if (!turn) throw new Error("the turn stream ended without a turn (the server log says why)");
}

async function inpaintRegion(region, prompt, seed) {
  const body = { region, prompt };
  if (seed !== null) body.seed = seed;
  const version = await postJson(routes.inpaint(state.dialogue.id), body);
  await loadVersions();
  await showVersion(version.number);
}

// ---- start-up -------------------------------------------------------------------------------------------------

const overlay = new Overlay($("#overlay"), $("#image"), {
  onEnter: hoverRegion,
  onLeave: () => hoverRegion(null),
  onClick: citeRegion,
});

const inpaint = setUpInpaint(
  { form: $("#inpaint-form"), region: $("#inpaint-region"), language: $("#inpaint-language"),
    prompt: $("#inpaint-prompt"), seed: $("#inpaint-seed") },
  (region, prompt, seed) => action(() => inpaintRegion(region, prompt, seed)),
);

$("#token").value = getToken();
$("#token").addEventListener("change", (ev) => {
  setToken(ev.target.value.trim());
  action(refreshList);
});
$("#error-close").addEventListener("click", clearError);
$("#image-input").addEventListener("change", (ev) => {
  const file = ev.target.files[0];
  ev.target.value = ""; // picking the same file again starts another dialogue
  if (file) action(() => upload(file));
});
$("#continue-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = $("#dialogue-list").value;
  if (!id) return showError(new Error("pick a stored dialogue from the list first"));
  action(() => openDialogue(id));
});
$("#refresh-list").addEventListener("click", () => action(refreshList));
$("#ask-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const question = $("#question").value.trim();
  if (!state.dialogue) return showError(new Error("upload an image or continue a dialogue first"));
  if (!question) return showError(new Error("type a question first"));
  action(() => ask(question));
});
$("#question").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { // Shift+Enter: a new line
    ev.preventDefault();
    $("#ask-form").requestSubmit();
  }
});
$("#download-export").addEventListener("click", () =>
  action(() => download(routes.export(state.dialogue.id), `dialogue-${state.dialogue.id}.json`)));
$("#download-render").addEventListener("click", () =>
  action(() => download(routes.render(state.dialogue.id, state.shown ?? 0), `dialogue-${state.dialogue.id}-v${state.shown ?? 0}.png`)));

setBusy(0);
action(async () => {
  await refreshList();
  const match = /^#dialogue=(.+)$/.exec(location.hash);
  if (match) await openDialogue(decodeURIComponent(match[1]));
}).finally(() => { document.body.dataset.ready = "true"; });
