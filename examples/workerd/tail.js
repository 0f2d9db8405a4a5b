// tail.js: a Streaming Tail Worker that forwards every tail event to stwbridge.
//
// workerd (or Cloudflare Workers) calls tailStream once per invocation of the worker
// it tails, with the invocation's onset event; the function it returns then gets the
// invocation's other events, outcome last. This worker batches an invocation's events
// and POSTs them as NDJSON to stwbridge's /v1/stw:
//   - a batch is sent when the outcome arrives, when it holds MAX_EVENTS events or
//     MAX_BYTES bytes, or FLUSH_MS after its first event, whichever comes first;
//   - batches of one invocation are sent one after the other, in order;
//   - a failed POST (network error, 429 or 5xx) is retried ATTEMPTS times in all with
//     exponential backoff; after that the batch is given up and counted (a 4xx other
//     than 429 is not retried: the same body would be refused again).
//
// Configuration (env bindings, all optional):
//   STWBRIDGE        a service binding to stwbridge (workerd: an external service);
//                    without it the global fetch() is used.
//   STWBRIDGE_URL    where to POST (default "http://stwbridge/v1/stw").
//   STWBRIDGE_TOKEN  sent as "Authorization: Bearer <token>" when set.
//   STWBRIDGE_GZIP   "1" or "true": gzip the request body.
//   STW_MAX_EVENTS, STW_MAX_BYTES, STW_FLUSH_MS, STW_ATTEMPTS, STW_BACKOFF_MS: the bounds.

const DEFAULTS = {
  url: "http://stwbridge/v1/stw",
  maxEvents: 64,
  maxBytes: 256 * 1024,
  flushMs: 250,
  attempts: 4,
  backoffMs: 100,
};

// Counters of this isolate, logged when a batch is given up.
export const stats = { batches: 0, events: 0, retries: 0, failedBatches: 0, failedEvents: 0 };

// encode serialises one tail event; timestamps become ISO strings (Date.toJSON) and
// bigints decimal strings, which JSON.stringify would otherwise refuse.
export function encode(event) {
  return JSON.stringify(event, (_key, value) => (typeof value === "bigint" ? value.toString() : value));
}

function intOption(env, name, fallback) {
  const n = Number.parseInt(env?.[name] ?? "", 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

function options(env) {
  return {
    url: env?.STWBRIDGE_URL || DEFAULTS.url,
    maxEvents: intOption(env, "STW_MAX_EVENTS", DEFAULTS.maxEvents),
    maxBytes: intOption(env, "STW_MAX_BYTES", DEFAULTS.maxBytes),
    flushMs: intOption(env, "STW_FLUSH_MS", DEFAULTS.flushMs),
    attempts: intOption(env, "STW_ATTEMPTS", DEFAULTS.attempts),
    backoffMs: intOption(env, "STW_BACKOFF_MS", DEFAULTS.backoffMs),
    gzip: env?.STWBRIDGE_GZIP === "1" || env?.STWBRIDGE_GZIP === "true",
    token: env?.STWBRIDGE_TOKEN || "",
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function gzip(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

// post sends one NDJSON body with bounded retry; it never throws.
async function post(env, opt, lines) {
  const text = lines.join("\n") + "\n";
  const headers = { "content-type": "application/x-ndjson" };
  if (opt.token) headers.authorization = `Bearer ${opt.token}`;
  let body = text;
  if (opt.gzip) {
    body = await gzip(text);
    headers["content-encoding"] = "gzip";
  }
  const send = env?.STWBRIDGE ? (req) => env.STWBRIDGE.fetch(req) : (req) => fetch(req);
  let lastError = "";
  for (let attempt = 1; attempt <= opt.attempts; attempt++) {
    try {
      const res = await send(new Request(opt.url, { method: "POST", headers, body }));
      const answer = await res.text();
      if (res.ok) {
        stats.batches++;
        stats.events += lines.length;
        return true;
      }
      lastError = `HTTP ${res.status}: ${answer.slice(0, 200)}`;
      if (res.status !== 429 && res.status < 500) break; // the same body would fail again
    } catch (err) {
      lastError = String(err);
    }
    if (attempt < opt.attempts) {
      stats.retries++;
      await sleep(opt.backoffMs * 2 ** (attempt - 1));
    }
  }
  stats.failedBatches++;
  stats.failedEvents += lines.length;
  console.error(
    `stwbridge tail: gave up a batch of ${lines.length} events to ${opt.url}: ${lastError}`,
    JSON.stringify(stats),
  );
  return false;
}

export default {
  tailStream(onset, env, ctx) {
    const opt = options(env);
    let lines = [];
    let bytes = 0;
    let timer = null;
    let sending = Promise.resolve(); // the batches of this invocation go out in order

    const flush = () => {
      if (timer !== null) {
        clearTimeout(timer);
        timer = null;
      }
      if (lines.length === 0) return sending;
      const batch = lines;
      lines = [];
      bytes = 0;
      sending = sending.then(() => post(env, opt, batch));
      return sending;
    };

    const add = (event) => {
      const line = encode(event);
      if (bytes > 0 && bytes + line.length + 1 > opt.maxBytes) flush();
      lines.push(line);
      bytes += line.length + 1;
      const type = event?.event?.type;
      if (type === "outcome" || lines.length >= opt.maxEvents || bytes >= opt.maxBytes) {
        return flush();
      }
      if (timer === null) {
        timer = setTimeout(() => {
          timer = null;
          ctx?.waitUntil?.(flush());
        }, opt.flushMs);
      }
      return undefined;
    };

    // Some runtimes hand over several events at once; accept both shapes.
    const addAll = (events) => {
      let last;
      for (const e of Array.isArray(events) ? events : [events]) last = add(e) ?? last;
      return last;
    };

    addAll(onset);
    return (event) => addAll(event);
  },
};
