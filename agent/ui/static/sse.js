// Server-sent events read from a fetch() body.  EventSource cannot POST, and a turn is a POST
// (/v1/dialogues/{id}/turns:stream), so the page reads the response stream itself and parses it here.
//
// The format (WHATWG HTML, "server-sent events"): UTF-8 lines ending in \n, \r\n or \r; an empty line ends an
// event; "field: value" lines set its fields (one space after the colon is dropped); several "data" lines are
// joined with \n; lines starting with ":" are comments (keep-alive pings); an event without data is not dispatched.

/** Incremental parser: feed() text chunks as they arrive, get back the events completed by each chunk. */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = null;
  }

  /** Parse a chunk (any split, even inside a line); returns [{event, data, id}] for the events it completed. */
  feed(chunk) {
    this.buffer += chunk;
    const out = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (match === null) break;
      // A lone \r at the very end may be the first half of \r\n: wait for the next chunk.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const done = this.line(line);
      if (done) out.push(done);
    }
    return out;
  }

  /** End of stream: returns the events a final lone \r completed; an unterminated last event is dropped. */
  finish() {
    const out = this.buffer.endsWith("\r") ? this.feed("\n") : [];
    this.buffer = "";
    this.reset();
    return out;
  }

  line(line) {
    if (line === "") {
      const done = this.data.length ? { event: this.event || "message", data: this.data.join("\n"), id: this.id } : null;
      this.reset();
      return done;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id") this.id = value;
    return null; // "retry" and unknown fields are ignored
  }
}

/**
 * Read a fetch() Response body as server-sent events, calling onEvent(name, parsedJson) for each one.
 * Every event of this API carries JSON data; a data line that is not JSON is a server bug and throws.
 */
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8"); // {stream: true} below keeps a UTF-8 character split across chunks whole
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
    for (const ev of done ? [...parser.feed(text), ...parser.finish()] : parser.feed(text)) {
      let payload;
      try {
        payload = JSON.parse(ev.data);
      } catch {
        throw new Error(`the server sent a '${ev.event}' event whose data is not JSON: ${ev.data.slice(0, 200)}`);
      }
      onEvent(ev.event, payload);
    }
    if (done) break;
  }
}
