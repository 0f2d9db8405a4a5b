// producer.js: a workerd worker that makes the spans stwbridge is tested with.
//
//   GET /a          user spans outer > inner > fetch (a subrequest to the ECHO
//                   service), attributes of each type, and a "background" span from
//                   ctx.waitUntil that ends after the response was returned. "outer"
//                   opens as "outer (pending)" and is renamed (span.updateName, a
//                   spanUpdate event); "inner" sets its status Ok (span.setStatus).
//   GET /throw      the same spans, then an uncaught exception.
//   GET /hang?ms=N  a span "hang" that stays open N ms (default 60000): long enough
//                   for stwbridge to report it, and its invocation, as unfinished.
//
// workerd streams the events of every invocation to the streaming tail worker
// (tail.js), which forwards them to stwbridge.

async function work(request, env, ctx) {
  const url = new URL(request.url);
  console.log("hello from main", request.url);
  await ctx.tracing.enterSpan("outer (pending)", async (outer) => {
    // The name known only once the work started, as OTel's UpdateName.
    outer.updateName("outer");
    outer.setAttribute("app.user", "alice");
    outer.setAttributes({ "app.count": 3, "app.ok": true, "app.ratio": 0.5 });
    await ctx.tracing.enterSpan("inner", async (inner) => {
      inner.setAttribute("inner.k", "v");
      inner.setStatus({ code: "ok" });
      // A subrequest: workerd opens a "fetch" span under "inner" by itself.
      const res = await env.ECHO.fetch(new URL("/echo", url).toString());
      await res.arrayBuffer();
    });
  });
  ctx.waitUntil(
    ctx.tracing.enterSpan("background", async (span) => {
      span.setAttribute("bg.step", 1);
      // Something that outlives the response: only I/O advances workerd's clock.
      await scheduler.wait(20);
      const res = await env.ECHO.fetch(new URL("/echo?bg=1", url).toString());
      await res.arrayBuffer();
    }),
  );
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/hang") {
      const ms = Number(url.searchParams.get("ms") ?? 60000);
      await ctx.tracing.enterSpan("hang", async (span) => {
        span.setAttribute("hang.ms", ms);
        await scheduler.wait(ms);
      });
      return new Response("done\n");
    }
    await work(request, env, ctx);
    if (url.pathname === "/throw") {
      throw new Error("boom");
    }
    return new Response("ok\n", { headers: { "content-type": "text/plain" } });
  },
};
