// Unit tests of tail.js under Node's test runner: node --test examples/workerd/
// (internal/e2e runs them in `make test`). The STWBRIDGE service binding is replaced by
// a function that records or refuses the POSTs.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";
import { gunzipSync } from "node:zlib";

import tail, { encode, stats } from "./tail.js";

// binding is a fake STWBRIDGE service binding: answer(n) gives the status of POST n.
function binding(answer = () => 200) {
  const posts = [];
  return {
    posts,
    async fetch(req) {
      const raw = Buffer.from(await req.arrayBuffer());
      const text = req.headers.get("content-encoding") === "gzip" ? gunzipSync(raw).toString() : raw.toString();
      posts.push({ url: req.url, headers: Object.fromEntries(req.headers), lines: text.trimEnd().split("\n") });
      const status = answer(posts.length);
      if (status === "throw") throw new Error("connection refused");
      return new Response(JSON.stringify({ accepted: 1 }), { status });
    },
  };
}

let seq = 0;
beforeEach(() => {
  seq = 0; // each test is one invocation, numbered from 0
});

function ev(type, extra = {}) {
  return {
    invocationId: "36ea23f65aa0585be81336c1f2b06c87",
    spanContext: { traceId: "983a4641c7fed86130cb5bf175732ce5", spanId: "a3ce54d35191e6ae" },
    timestamp: new Date(Date.UTC(2026, 10, 23, 18, 31, 8, seq)),
    sequence: seq++,
    event: { type, ...extra },
  };
}

// run feeds events through one tail session and waits for everything it started.
async function run(env, events) {
  const pending = [];
  const ctx = { waitUntil: (p) => pending.push(p) };
  const handler = tail.tailStream(events[0], env, ctx);
  for (const e of events.slice(1)) {
    const r = handler(e);
    if (r) pending.push(r);
  }
  await Promise.all(pending);
}

test("encode turns bigints into strings and dates into ISO text", () => {
  const line = encode({ n: 12345678901234567890n, t: new Date(0), list: [1n] });
  assert.equal(line, '{"n":"12345678901234567890","t":"1970-01-01T00:00:00.000Z","list":["1"]}');
});

test("one POST per invocation when the outcome comes first", async () => {
  const b = binding();
  await run({ STWBRIDGE: b }, [ev("onset", { spanId: "a3ce54d35191e6ae" }), ev("log", { message: ["hi"] }), ev("outcome", { outcome: "ok" })]);
  assert.equal(b.posts.length, 1);
  assert.equal(b.posts[0].url, "http://stwbridge/v1/stw");
  assert.equal(b.posts[0].headers["content-type"], "application/x-ndjson");
  assert.deepEqual(b.posts[0].lines.map((l) => JSON.parse(l).sequence), [0, 1, 2]);
});

test("STW_MAX_EVENTS splits batches, in order", async () => {
  const b = binding();
  const events = [ev("onset"), ...Array.from({ length: 6 }, () => ev("log", { message: ["x"] })), ev("outcome", { outcome: "ok" })];
  await run({ STWBRIDGE: b, STW_MAX_EVENTS: "3" }, events);
  assert.deepEqual(b.posts.map((p) => p.lines.length), [3, 3, 2]);
  assert.deepEqual(b.posts.flatMap((p) => p.lines.map((l) => JSON.parse(l).sequence)), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test("STW_MAX_BYTES splits batches before they grow past it", async () => {
  const b = binding();
  const big = "y".repeat(400);
  await run({ STWBRIDGE: b, STW_MAX_BYTES: "1000" }, [ev("onset"), ev("log", { message: [big] }), ev("log", { message: [big] }), ev("outcome", { outcome: "ok" })]);
  assert.ok(b.posts.length >= 2, `${b.posts.length} posts`);
  for (const p of b.posts) assert.ok(p.lines.join("\n").length <= 1000 || p.lines.length === 1);
});

test("STW_FLUSH_MS sends a batch without waiting for the outcome", async () => {
  const b = binding();
  const pending = [];
  const handler = tail.tailStream(ev("onset"), { STWBRIDGE: b, STW_FLUSH_MS: "20" }, { waitUntil: (p) => pending.push(p) });
  handler(ev("log", { message: ["x"] }));
  const deadline = Date.now() + 5000;
  while (b.posts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(b.posts.length, 1);
  assert.equal(b.posts[0].lines.length, 2);
  await handler(ev("outcome", { outcome: "ok" }));
  assert.equal(b.posts.length, 2);
});

test("a refused POST is retried with backoff, then given up and counted", async () => {
  const b = binding((n) => (n <= 2 ? 503 : 200));
  await run({ STWBRIDGE: b, STW_BACKOFF_MS: "1" }, [ev("onset"), ev("outcome", { outcome: "ok" })]);
  assert.equal(b.posts.length, 3, "two refusals, then success");

  const before = { ...stats };
  const down = binding(() => "throw");
  const errors = [];
  const orig = console.error;
  console.error = (...a) => errors.push(a.join(" "));
  try {
    await run({ STWBRIDGE: down, STW_BACKOFF_MS: "1", STW_ATTEMPTS: "3" }, [ev("onset"), ev("outcome", { outcome: "ok" })]);
  } finally {
    console.error = orig;
  }
  assert.equal(down.posts.length, 3, "three attempts in all");
  assert.equal(stats.failedBatches, before.failedBatches + 1);
  assert.equal(stats.failedEvents, before.failedEvents + 2);
  assert.match(errors.join("\n"), /gave up a batch of 2 events/);
});

test("a 400 is not retried: the same body would be refused again", async () => {
  const b = binding(() => 400);
  const orig = console.error;
  console.error = () => {};
  try {
    await run({ STWBRIDGE: b, STW_BACKOFF_MS: "1" }, [ev("onset"), ev("outcome", { outcome: "ok" })]);
  } finally {
    console.error = orig;
  }
  assert.equal(b.posts.length, 1);
});

test("gzip, token and URL settings", async () => {
  const b = binding();
  await run({ STWBRIDGE: b, STWBRIDGE_GZIP: "true", STWBRIDGE_TOKEN: "s3cret", STWBRIDGE_URL: "http://x/v1/stw" },
    [ev("onset"), ev("outcome", { outcome: "ok" })]);
  assert.equal(b.posts[0].headers["content-encoding"], "gzip");
  assert.equal(b.posts[0].headers.authorization, "Bearer s3cret");
  assert.equal(b.posts[0].url, "http://x/v1/stw");
  assert.equal(b.posts[0].lines.length, 2);
});
