// stwbridge live view: reads GET /v1/live as server-sent events through fetch() (so
// that a bearer token can travel as a header), keeps a bounded model of the traces in
// view, and redraws at most once per animation frame.
"use strict";

(() => {
  // Bounds of the page's memory, as `stwbridge tail`'s.
  const MAX_TRACES = 300; // beyond: the oldest finished trace (else the oldest) goes
  const MAX_SPANS_PER_TRACE = 500; // later spans of a trace are counted, not kept
  const MAX_LIST_ROWS = 100; // rows drawn in the trace list
  const MAX_QUEUE = 50000; // events waiting for the next frame; beyond, counted as skipped
  const KEEPALIVE = "5s"; // asked of the server; silence for 3× this reconnects
  const IDLE_MS = 15000;
  const TICK_MS = 100; // redraw period while spans are open (durations tick)
  const TOKEN_KEY = "stwbridge.token";

  const $ = (id) => document.getElementById(id);
  const el = {
    conn: $("conn"), connText: $("conn-text"), filters: $("filters"),
    service: $("f-service"), search: $("f-search"), status: $("f-status"), minOpen: $("f-minopen"),
    pause: $("pause"), clear: $("clear"), notice: $("notice"), auth: $("auth"), token: $("token"),
    traces: $("traces"), empty: $("empty"), traceHead: $("trace-head"), waterfall: $("waterfall"),
    spanDetail: $("span-detail"), stOpen: $("st-open"), stTraces: $("st-traces"), stRate: $("st-rate"),
  };

  // ---- model ----
  const model = {
    traces: new Map(), // trace id → trace
    seq: 0,
    skipped: 0, // events the server said this page missed (it fell behind)
    dropped: 0, // events the page itself let go (its queue was full)
    forgot: 0, // traces forgotten to stay within MAX_TRACES
    producerDropped: 0, // events producers reported dropping (diagnostic)
  };

  function clearModel() {
    model.traces.clear();
    model.skipped = model.dropped = model.forgot = model.producerDropped = 0;
    ui.selected = null;
    ui.selectedSpan = null;
  }

  // parseTime turns RFC 3339 with up to nanoseconds into milliseconds (fractional).
  function parseTime(s) {
    if (!s) return 0;
    const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
    if (!m) return Date.parse(s) || 0;
    const base = Date.parse(m[1] + m[3]);
    if (isNaN(base)) return 0;
    return base + (m[2] ? Number("0." + m[2]) * 1000 : 0);
  }

  function traceOf(e) {
    let tr = model.traces.get(e.trace_id);
    if (!tr) {
      if (model.traces.size >= MAX_TRACES) evict();
      tr = { id: e.trace_id, service: "", spans: new Map(), hidden: 0, arrival: ++model.seq, finishedAt: 0, open: 0 };
      model.traces.set(e.trace_id, tr);
    }
    if (!tr.service && e.service) tr.service = e.service;
    return tr;
  }

  // evict forgets the oldest finished trace, or the oldest trace when all are open.
  function evict() {
    let victim = null;
    for (const tr of model.traces.values()) {
      if (!victim ||
          (tr.finishedAt && !victim.finishedAt) ||
          (!!tr.finishedAt === !!victim.finishedAt && tr.arrival < victim.arrival)) {
        victim = tr;
      }
    }
    if (victim) {
      model.traces.delete(victim.id);
      model.forgot++;
      if (ui.selected === victim.id) ui.selected = null;
    }
  }

  function apply(e, now) {
    switch (e.type) {
      case "keepalive": return;
      case "skipped": model.skipped += e.skipped || 0; return;
      case "diagnostic": model.producerDropped += e.dropped_events || 0; return;
    }
    if (!e.trace_id || !e.span_id) return;
    const known = model.traces.get(e.trace_id);
    if (e.type === "outcome" && !(known && known.spans.has(e.span_id)) && !e.name) return;
    const tr = traceOf(e);
    let sp = tr.spans.get(e.span_id);
    if (!sp) {
      if (tr.spans.size >= MAX_SPANS_PER_TRACE) { tr.hidden++; return; }
      sp = {
        id: e.span_id, parent: "", name: "", oldName: "", service: "", kind: "", start: 0, end: 0,
        ended: false, status: "", statusDesc: "", unfinished: false, attrs: {}, events: [], notes: [],
        arrival: ++model.seq,
      };
      tr.spans.set(e.span_id, sp);
      tr.open++;
      tr.finishedAt = 0;
    } else if (sp.ended && (e.type === "span_end" || e.type === "outcome")) {
      return; // a second end (an outcome after the span's own end): nothing new
    }
    // Every line carries what the server knows of its span: fill what is missing.
    if (!sp.name && e.name) sp.name = e.name;
    if (!sp.parent && e.parent_span_id) sp.parent = e.parent_span_id;
    if (!sp.service && e.service) sp.service = e.service;
    if (!sp.kind && e.kind) sp.kind = e.kind;
    if (!sp.start && e.start) sp.start = parseTime(e.start);
    const at = parseTime(e.time) || now;
    switch (e.type) {
      case "span_open": case "onset":
        if (e.name) sp.name = e.name;
        if (!sp.start) sp.start = at;
        Object.assign(sp.attrs, e.attributes);
        break;
      case "update_name":
        if (e.name && e.name !== sp.name) {
          sp.oldName = e.old_name || sp.name;
          sp.name = e.name;
        }
        break;
      case "attributes":
        Object.assign(sp.attrs, e.attributes);
        break;
      case "status":
        if (e.status) { sp.status = e.status.code; sp.statusDesc = e.status.description || ""; }
        break;
      case "span_end": case "outcome":
        sp.ended = true;
        tr.open--;
        sp.end = at;
        if (e.duration_ns > 0) {
          if (!sp.start) sp.start = at - e.duration_ns / 1e6;
          sp.end = sp.start + e.duration_ns / 1e6;
        }
        if (!sp.start) sp.start = at;
        if (e.type === "outcome") {
          const bad = e.outcome && e.outcome !== "ok";
          sp.status = bad ? "error" : "ok";
          sp.statusDesc = bad ? e.outcome : "";
        } else if (e.status) {
          sp.status = e.status.code;
          sp.statusDesc = e.status.description || "";
        }
        sp.unfinished = !!e.unfinished;
        Object.assign(sp.attrs, e.attributes);
        if (e.events) sp.events = e.events.slice(0, 50);
        break;
      case "log":
        note(sp, at, (e.level ? e.level + ": " : "") + (e.message || ""), e.level === "error");
        break;
      case "exception":
        if (e.exception) note(sp, at, [e.exception.name, e.exception.message].filter(Boolean).join(": "), true);
        break;
      case "return":
        if (e.status_code) note(sp, at, "returned " + e.status_code, e.status_code >= 500);
        break;
    }
    if (sp.ended && tr.open === 0) tr.finishedAt = now;
  }

  function note(sp, at, text, bad) {
    sp.notes.push({ at, text, bad });
    if (sp.notes.length > 20) sp.notes.shift();
  }

  // ---- the stream ----
  const queue = [];
  let paused = false;
  let rateCount = 0;
  let conn = null; // { ctrl: AbortController }
  let retryDelay = 250;

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function liveURL() {
    const q = new URLSearchParams();
    const add = (k, v) => { v = v.trim(); if (v) q.set(k, v); };
    add("service", el.service.value);
    add("search", el.search.value);
    add("status", el.status.value);
    add("min_open", el.minOpen.value);
    q.set("keepalive", KEEPALIVE);
    return "../v1/live?" + q.toString();
  }

  function setConn(state, text) {
    el.conn.dataset.state = state;
    el.connText.textContent = text;
  }

  function connect() {
    if (conn) conn.ctrl.abort();
    const ctrl = new AbortController();
    const me = { ctrl };
    conn = me;
    run(me).catch((err) => {
      if (conn !== me || ctrl.signal.aborted && !me.idle) return;
      const wait = retryDelay;
      retryDelay = Math.min(retryDelay * 2, 5000);
      setConn("down", `${err.message || err}; retrying in ${(wait / 1000).toFixed(1)}s`);
      setTimeout(() => { if (conn === me) connect(); }, wait);
    });
  }

  async function run(me) {
    setConn("connecting", "connecting…");
    const headers = { Accept: "text/event-stream" };
    const tok = token();
    if (tok) headers.Authorization = "Bearer " + tok;
    const resp = await fetch(liveURL(), { headers, signal: me.ctrl.signal, cache: "no-store" });
    if (resp.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      el.auth.hidden = false;
      el.token.focus();
      setConn("down", tok ? "the token was refused" : "a bearer token is required");
      conn = null;
      return;
    }
    if (!resp.ok) {
      const text = (await resp.text()).trim();
      if (resp.status === 400) { // a bad filter: retrying cannot fix it
        setConn("down", text);
        conn = null;
        return;
      }
      throw new Error(`GET /v1/live: ${resp.status} ${text}`);
    }
    el.auth.hidden = true;
    retryDelay = 250;
    setConn("up", "live");
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    let idle = setTimeout(() => { me.idle = true; me.ctrl.abort(); }, IDLE_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the server ended the stream");
        clearTimeout(idle);
        idle = setTimeout(() => { me.idle = true; me.ctrl.abort(); }, IDLE_MS);
        buf += dec.decode(value, { stream: true });
        // Blocks are cut by index and the rest kept once: slicing the buffer per block
        // would copy it again for every event of a large read.
        let from = 0, cut;
        while ((cut = buf.indexOf("\n\n", from)) >= 0) {
          take(buf.slice(from, cut));
          from = cut + 2;
        }
        buf = buf.slice(from);
      }
    } catch (err) {
      if (me.idle) throw new Error(`no data for ${IDLE_MS / 1000}s`);
      throw err;
    } finally {
      clearTimeout(idle);
    }
  }

  // take decodes one SSE block ("event: type\ndata: {...}"); comments are keep-alives.
  function take(block) {
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("data:")) data += line.slice(line[5] === " " ? 6 : 5);
    }
    if (!data) return;
    let e;
    try { e = JSON.parse(data); } catch { return; }
    rateCount++;
    if (queue.length >= MAX_QUEUE) { model.dropped++; return; }
    queue.push(e);
    schedule();
  }

  // ---- rendering ----
  const ui = { selected: null, selectedSpan: null, userPicked: false, dirty: true, frame: 0, lastDraw: 0, gap: TICK_MS };

  function schedule() {
    if (!ui.frame) ui.frame = requestAnimationFrame(frame);
  }

  function frame(ts) {
    ui.frame = 0;
    const now = Date.now();
    if (queue.length) {
      for (let i = 0; i < queue.length; i++) apply(queue[i], now);
      queue.length = 0;
      ui.dirty = true;
    }
    // At most one redraw per TICK_MS, however many events arrive: 10k events/s cost
    // one pass over the queue per frame and ten redraws per second.
    if (!paused && ts - ui.lastDraw >= ui.gap && (ui.dirty || hasOpen())) {
      const t0 = performance.now();
      draw(now);
      // A busy page draws less often: the pause after a redraw grows with its cost
      // (layout and paint included, roughly, by a factor).
      ui.gap = Math.max(TICK_MS - 20, (performance.now() - t0) * 10);
      ui.lastDraw = ts;
      ui.dirty = false;
    } else if (ui.dirty && !paused) {
      schedule();
    }
  }

  // setHTML replaces an element's content only when it changed, so that still parts
  // of the page keep their DOM (and a text selection).
  function setHTML(node, html) {
    if (node._html !== html) {
      node.innerHTML = html;
      node._html = html;
    }
  }

  // Durations tick while spans are open, and the rate is refreshed, without events.
  setInterval(() => { if (hasOpen()) schedule(); }, TICK_MS);
  setInterval(() => { el.stRate.textContent = fmtCount(rateCount); rateCount = 0; }, 1000);

  function hasOpen() {
    for (const tr of model.traces.values()) if (tr.open > 0) return true;
    return false;
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function fmtCount(n) { return n >= 10000 ? (n / 1000).toFixed(0) + "k" : String(n); }

  // fmtDur writes milliseconds short: 850µs, 12.3ms, 1.25s, 2m03s, 1h02m.
  function fmtDur(ms) {
    if (!(ms > 0)) return "0ms";
    if (ms < 1) return Math.round(ms * 1000) + "µs";
    if (ms < 100) return ms.toFixed(1) + "ms";
    if (ms < 1000) return Math.round(ms) + "ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }

  function spanState(sp) {
    if (!sp.ended) return "open";
    if (sp.unfinished) return "unfinished";
    if (sp.status === "error") return "error";
    return "ended";
  }

  function rootOf(tr) {
    let best = null;
    for (const sp of tr.spans.values()) {
      const top = !sp.parent || !tr.spans.has(sp.parent);
      if (!top) continue;
      if (!best || (!!best.parent && !sp.parent) || (!!best.parent === !!sp.parent && sp.start && (!best.start || sp.start < best.start))) best = sp;
    }
    return best;
  }

  function extent(tr, now) {
    let t0 = Infinity, t1 = -Infinity, errors = 0, unfinished = 0;
    for (const sp of tr.spans.values()) {
      if (sp.start) t0 = Math.min(t0, sp.start);
      t1 = Math.max(t1, sp.ended ? sp.end : now);
      if (sp.unfinished) unfinished++;
      else if (sp.status === "error") errors++;
    }
    if (t0 === Infinity) t0 = now;
    return { t0, t1: Math.max(t1, t0), errors, unfinished };
  }

  function ordered() {
    // Newest first: traces with open spans keep their place by arrival.
    return Array.from(model.traces.values()).sort((a, b) => b.arrival - a.arrival);
  }

  function draw(now) {
    const list = ordered();
    let open = 0;
    for (const tr of list) open += tr.open;
    el.stOpen.textContent = fmtCount(open);
    el.stTraces.textContent = fmtCount(list.length);
    drawNotice();

    if (!ui.userPicked || !model.traces.has(ui.selected)) {
      // Follow: the newest trace with spans open, else the newest.
      const pick = list.find((tr) => tr.open > 0) || list[0];
      ui.selected = pick ? pick.id : null;
      ui.userPicked = ui.userPicked && !!pick;
    }

    el.empty.hidden = list.length > 0;
    const rows = [];
    for (const tr of list.slice(0, MAX_LIST_ROWS)) {
      const root = rootOf(tr);
      const x = extent(tr, now);
      const state = tr.open > 0 ? "open" : (x.unfinished ? "unfinished" : (x.errors ? "error" : "ended"));
      const name = root ? root.name || "(unnamed)" : "(no spans)";
      rows.push(
        `<div class="trace" role="option" data-trace-id="${tr.id}" data-state="${state}" aria-selected="${tr.id === ui.selected}">` +
        `<span class="state-dot"></span>` +
        `<span class="t-main"><span class="t-name">${esc(name)}</span>` +
        `<span class="t-sub">${esc(tr.service || "unknown service")} · ${tr.id.slice(0, 8)}</span></span>` +
        `<span class="t-spans"><b class="open-count">${tr.open}</b>/${tr.spans.size + tr.hidden}</span>` +
        `<span class="t-dur dur">${tr.open > 0 ? "open " : ""}${fmtDur(x.t1 - x.t0)}</span></div>`);
    }
    setHTML(el.traces, rows.join(""));
    drawTrace(now);
  }

  function drawNotice() {
    const parts = [];
    if (model.skipped) parts.push(`${model.skipped.toLocaleString()} events skipped: this page fell behind the stream, so some spans may be missing or incomplete`);
    if (model.dropped) parts.push(`${model.dropped.toLocaleString()} events dropped by the page while it was busy`);
    if (model.forgot) parts.push(`${model.forgot.toLocaleString()} older traces let go to keep memory bounded`);
    if (model.producerDropped) parts.push(`producers reported ${model.producerDropped.toLocaleString()} dropped events`);
    const text = parts.join(" · ");
    el.notice.hidden = !text;
    if (el.notice.textContent !== text) el.notice.textContent = text;
  }

  function drawTrace(now) {
    const tr = ui.selected && model.traces.get(ui.selected);
    if (!tr) {
      setHTML(el.traceHead, "");
      setHTML(el.waterfall, "");
      el.spanDetail.hidden = true;
      return;
    }
    const x = extent(tr, now);
    // The scale leaves room right of the longest bar for its label.
    const span = Math.max(x.t1 - x.t0, 1) / 0.84;
    const root = rootOf(tr);
    setHTML(el.traceHead,
      `<div class="th-name">${esc(root ? root.name : "")}</div>` +
      `<div class="th-meta"><span>${esc(tr.service || "unknown service")}</span><span class="mono">trace ${tr.id}</span>` +
      `<span>${tr.spans.size} spans${tr.hidden ? ` (+${tr.hidden} not kept)` : ""}</span>` +
      (tr.open ? `<span class="pill open">${tr.open} open</span>` : "") +
      (x.unfinished ? `<span class="pill unfinished">${x.unfinished} unfinished</span>` : "") +
      (x.errors ? `<span class="pill error">${x.errors} error${x.errors > 1 ? "s" : ""}</span>` : "") +
      `</div>`);

    // Tree order: children under their parent, by start.
    const kids = new Map();
    const tops = [];
    for (const sp of tr.spans.values()) {
      if (sp.parent && sp.parent !== sp.id && tr.spans.has(sp.parent)) {
        if (!kids.has(sp.parent)) kids.set(sp.parent, []);
        kids.get(sp.parent).push(sp);
      } else tops.push(sp);
    }
    const byStart = (a, b) => (a.start && b.start && a.start !== b.start) ? a.start - b.start : a.arrival - b.arrival;
    tops.sort(byStart);
    const rows = [];
    const seen = new Set();
    const ticks = axis(span);
    rows.push(`<div class="axis"><div class="w-name">Span</div><div class="w-track">` +
      ticks.map((t) => `<span style="left:${(t / span) * 100}%">${fmtDur(t)}</span>`).join("") + `</div></div>`);
    const walk = (sp, depth) => {
      if (seen.has(sp.id)) return;
      seen.add(sp.id);
      const st = spanState(sp);
      const end = sp.ended ? sp.end : now;
      const left = ((sp.start || x.t0) - x.t0) / span * 100;
      const width = Math.max((end - (sp.start || x.t0)) / span * 100, 0.3);
      const dur = end - (sp.start || end);
      const label = st === "open" ? `open ${fmtDur(dur)}` : fmtDur(dur);
      const badge = st === "unfinished" ? `<span class="badge unfinished">unfinished</span>` :
        st === "error" ? `<span class="badge error">error</span>` :
        st === "open" ? `<span class="badge open">open</span>` : "";
      const rename = sp.oldName ? ` <span class="rename" title="renamed">← <span class="old-name">${esc(sp.oldName)}</span></span>` : "";
      const svc = sp.service && sp.service !== tr.service ? ` <span class="svc">${esc(sp.service)}</span>` : "";
      rows.push(
        `<div class="span" data-span-id="${sp.id}" data-state="${st}" aria-selected="${sp.id === ui.selectedSpan}">` +
        `<div class="w-name" style="padding-left:${16 + depth * 18}px">` +
        `<span class="s-name">${esc(sp.name || "(unnamed)")}</span>${rename}${svc}${badge}</div>` +
        `<div class="w-track"><div class="bar" style="left:${left}%;width:${Math.min(width, 100 - left)}%"></div>` +
        `<span class="dur" style="left:${Math.min(left + width, 100 - 14)}%">${label}</span></div></div>`);
      const ks = kids.get(sp.id);
      if (ks) { ks.sort(byStart); for (const k of ks) walk(k, depth + 1); }
    };
    for (const sp of tops) walk(sp, 0);
    for (const sp of tr.spans.values()) walk(sp, 0); // spans only reachable through a cycle
    setHTML(el.waterfall, rows.join(""));
    drawSpan(tr, now);
  }

  // axis picks 4–6 round tick marks over a span of ms.
  function axis(span) {
    const steps = [1, 2, 5];
    let step = 0.001;
    for (let p = 0.001; step * 5 < span; p *= 10) {
      for (const s of steps) { step = s * p; if (step * 5 >= span) break; }
    }
    const out = [];
    for (let t = 0; t <= span * 0.9; t += step) out.push(t); // room for the last label
    return out;
  }

  function drawSpan(tr, now) {
    const sp = ui.selectedSpan && tr.spans.get(ui.selectedSpan);
    if (!sp) { el.spanDetail.hidden = true; return; }
    el.spanDetail.hidden = false;
    const st = spanState(sp);
    const dur = (sp.ended ? sp.end : now) - sp.start;
    const kv = (k, v) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`;
    const rows = [
      kv("span id", sp.id),
      sp.parent ? kv("parent", sp.parent) : "",
      sp.oldName ? kv("renamed from", sp.oldName) : "",
      sp.kind ? kv("kind", sp.kind) : "",
      kv("service", sp.service || tr.service || ""),
      kv("started", sp.start ? new Date(sp.start).toISOString() : "unknown"),
      kv(st === "open" ? "open for" : "duration", fmtDur(dur)),
      kv("state", st + (sp.statusDesc ? ` (${sp.statusDesc})` : "")),
    ];
    const attrs = Object.keys(sp.attrs).sort().map((k) => kv(k, typeof sp.attrs[k] === "string" ? sp.attrs[k] : JSON.stringify(sp.attrs[k])));
    const notes = sp.notes.map((n) => `<li class="${n.bad ? "bad" : ""}">${esc(n.text)}</li>`);
    const events = sp.events.map((ev) => `<li>${esc(ev.name)}${ev.attributes ? " " + esc(JSON.stringify(ev.attributes)) : ""}</li>`);
    setHTML(el.spanDetail,
      `<div class="sd-head"><span class="s-name">${esc(sp.name)}</span><button type="button" class="btn small" data-close>Close</button></div>` +
      `<table class="kv">${rows.join("")}</table>` +
      (attrs.length ? `<h4>Attributes</h4><table class="kv attrs">${attrs.join("")}</table>` : `<p class="muted">No attributes.</p>`) +
      (events.length ? `<h4>Events</h4><ul class="notes">${events.join("")}</ul>` : "") +
      (notes.length ? `<h4>Logs</h4><ul class="notes">${notes.join("")}</ul>` : ""));
  }

  // ---- controls ----
  // Rows are redrawn while spans are open, so a press and its release may land on two
  // copies of a row: rows are picked on the press.
  const pressed = (ev) => ev.button === 0;
  el.traces.addEventListener("pointerdown", (ev) => {
    if (!pressed(ev)) return;
    const row = ev.target.closest(".trace");
    if (!row) return;
    ui.selected = row.dataset.traceId;
    ui.selectedSpan = null;
    ui.userPicked = true;
    redraw();
  });
  el.waterfall.addEventListener("pointerdown", (ev) => {
    if (!pressed(ev)) return;
    const row = ev.target.closest(".span");
    if (!row) return;
    ui.selectedSpan = ui.selectedSpan === row.dataset.spanId ? null : row.dataset.spanId;
    ui.userPicked = true;
    redraw();
  });
  el.spanDetail.addEventListener("click", (ev) => {
    if (ev.target.closest("[data-close]")) { ui.selectedSpan = null; redraw(); }
  });
  el.filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    queue.length = 0;
    clearModel();
    redraw();
    connect();
  });
  el.status.addEventListener("change", () => el.filters.requestSubmit());
  el.pause.addEventListener("click", () => {
    paused = !paused;
    el.pause.setAttribute("aria-pressed", String(paused));
    el.pause.textContent = paused ? "Resume" : "Pause";
    document.body.classList.toggle("paused", paused);
    redraw();
  });
  el.clear.addEventListener("click", () => { clearModel(); redraw(); });
  el.auth.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = el.token.value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    el.token.value = "";
    el.auth.hidden = true;
    connect();
  });

  function redraw() { ui.dirty = true; schedule(); }

  connect();
  redraw();
})();
