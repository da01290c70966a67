// The page's only way to the server: the /v1 routes of docs/serving.md, with an optional bearer token.
// Errors come back as application/problem+json ({title, status, detail, kind, hint}); they are thrown as ApiError
// so that the caller shows them in the page's error line.

import { readEvents } from "./sse.js";

const TOKEN_KEY = "regionreasoner.token";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API (or a network failure, status 0), with the problem body when there is one. */
export class ApiError extends Error {
  constructor(status, problem, fallback) {
    super(problem?.detail || fallback || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || null;
    this.hint = problem?.hint || null;
    this.kind = problem?.kind || null;
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  const token = getToken();
  if (token) h.set("Authorization", `Bearer ${token}`);
  return h;
}

/** The problem of a failed response: its problem+json body, or its text when it has none. */
async function failure(response) {
  const text = await response.text();
  let problem = null;
  try {
    problem = JSON.parse(text);
  } catch {
    // not JSON (a proxy's HTML page, a plain-text 502): the text itself is the message
  }
  if (problem && typeof problem === "object" && !Array.isArray(problem)) {
    // FastAPI's own 422 body is {"detail": [{loc, msg}]}; show its messages rather than "[object Object]".
    if (Array.isArray(problem.detail)) problem.detail = problem.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    return new ApiError(response.status, problem);
  }
  return new ApiError(response.status, null, `HTTP ${response.status} ${response.statusText}: ${text.slice(0, 300)}`);
}

/** fetch() with the token; network failures become ApiError(0). */
export async function request(path, { method = "GET", json, form, accept } = {}) {
  const init = { method, headers: headers(accept ? { Accept: accept } : {}) };
  if (json !== undefined) {
    init.headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form; // FormData: fetch sets the multipart Content-Type with its boundary
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, null, `cannot reach the server (${err.message})`);
  }
  if (!response.ok) throw await failure(response);
  return response;
}

export async function getJson(path) {
  return (await request(path)).json();
}

export async function postJson(path, body) {
  return (await request(path, { method: "POST", json: body })).json();
}

/** Start a dialogue about an image file: POST /v1/upload, multipart field `file` (+ `title`). */
export async function uploadImage(file, title) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (title) form.append("title", title);
  return (await request(routes.upload(), { method: "POST", form })).json();
}

/**
 * An object URL for a binary route (images, downloads).  <img src> and <a href> cannot send the Authorization
 * header, so the page fetches the bytes itself; the caller revokes the URL when the element goes away.
 */
export async function blobUrl(path) {
  const blob = await (await request(path)).blob();
  return URL.createObjectURL(blob);
}

/** Save a route's answer as a file named `filename` (export JSON, rendered PNG). */
export async function download(path, filename) {
  const url = await blobUrl(path);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export const routes = {
  dialogues: () => "/v1/dialogues?limit=100",
  upload: () => "/v1/upload",
  dialogue: (id) => `/v1/dialogues/${encodeURIComponent(id)}`,
  stream: (id) => `/v1/dialogues/${encodeURIComponent(id)}/turns:stream`, // ":stream": not a turn index
  tools: (id, i) => `/v1/dialogues/${encodeURIComponent(id)}/turns/${i}/tools`,
  trace: (id, i) => `/v1/dialogues/${encodeURIComponent(id)}/turns/${i}/trace`,
  versions: (id) => `/v1/dialogues/${encodeURIComponent(id)}/versions`,
  versionImage: (id, n) => `/v1/dialogues/${encodeURIComponent(id)}/versions/${n}/image`,
  render: (id, n) => `/v1/dialogues/${encodeURIComponent(id)}/render?version=${n}`,
  inpaint: (id) => `/v1/dialogues/${encodeURIComponent(id)}/inpaint`,
  export: (id) => `/v1/dialogues/${encodeURIComponent(id)}/export`,
};

/**
 * Ask a question as a stream: onEvent("delta", {section, text}), ("node", {node}), ("turn", Turn) and
 * ("error", Problem) as they arrive.  Resolves when the stream ends; a non-2xx answer rejects with ApiError.
 */
export async function streamTurn(dialogueId, question, onEvent) {
  const response = await request(routes.stream(dialogueId), {
    method: "POST",
    json: { question },
    accept: "text/event-stream",
  });
  await readEvents(response, onEvent);
}
