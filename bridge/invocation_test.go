package bridge_test

import (
	"context"
	"math/rand"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/bridge/workerd"
)

func sample(t testing.TB) []bridge.Event {
	t.Helper()
	data, err := os.ReadFile("../testdata/workerd-stw-sample.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	events, errs := workerd.DecodeStream(data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return events
}

func attrMap(s bridge.Span) map[string]any {
	m := map[string]any{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

func checkSample(t *testing.T, col *collector, st bridge.AssemblerStats) {
	t.Helper()
	spans := col.all()
	if len(spans) != 13 {
		t.Fatalf("%d spans: %v", len(spans), names(spans))
	}
	byKey := map[string]bridge.Span{}
	for _, s := range spans {
		if s.Unfinished {
			t.Errorf("unfinished: %+v", s)
		}
		byKey[s.TraceID.String()[:4]+"/"+s.Name] = s
	}
	get := func(k string) bridge.Span {
		s, ok := byKey[k]
		if !ok {
			t.Fatalf("no span %s among %v", k, names(spans))
		}
		return s
	}
	for _, tr := range []string{"983a", "6bab"} {
		root, outer, inner, fetch := get(tr+"/GET"), get(tr+"/outer"), get(tr+"/inner"), get(tr+"/fetch")
		if root.Parent.IsValid() || root.SpanKind != trace.SpanKindServer || outer.Parent != root.SpanID ||
			inner.Parent != outer.SpanID || fetch.Parent != inner.SpanID {
			t.Errorf("%s: parents wrong: root %s outer %s<-%s inner %s<-%s fetch <-%s", tr,
				root.SpanID, outer.SpanID, outer.Parent, inner.SpanID, inner.Parent, fetch.Parent)
		}
		ra := attrMap(root)
		for k, v := range map[string]any{
			"http.request.method": "GET", "url.scheme": "http", "server.address": "127.0.0.1",
			"server.port": int64(18080), "user_agent.original": "curl/7.88.1",
			"http.request.header.accept": []string{"*/*"}, "cloudflare.execution_model": "stateless",
			"faas.trigger": "http",
		} {
			if !reflect.DeepEqual(ra[k], v) {
				t.Errorf("%s root %s = %#v, want %#v", tr, k, ra[k], v)
			}
		}
		if _, ok := ra["http.request.header.host"]; ok {
			t.Error("host header recorded without being allowed")
		}
		if oa := attrMap(outer); oa["app.count"] != int64(3) || oa["app.ratio"] != 0.5 || oa["app.ok"] != true || oa["app.user"] != "alice" {
			t.Errorf("outer attributes %v", oa)
		}
		if attrMap(inner)["inner.k"] != "v" || attrMap(fetch)["url.full"] != "http://127.0.0.1:18081/echo" {
			t.Errorf("inner %v fetch %v", inner.Attributes, fetch.Attributes)
		}
		// workerd's subrequest span, as the HTTP client conventions have it.
		fa := attrMap(fetch)
		for k, v := range map[string]any{
			"http.response.status_code": int64(404), "http.response.body.size": int64(335),
			"network.protocol.version": "HTTP/1.1", "http.request.method": "GET",
			"server.address": "127.0.0.1", "server.port": int64(18081), "error.type": "404",
		} {
			if !reflect.DeepEqual(fa[k], v) {
				t.Errorf("%s fetch %s = %#v, want %#v", tr, k, fa[k], v)
			}
		}
		if fetch.SpanKind != trace.SpanKindClient || fetch.Status != (bridge.Status{Code: codes.Error}) {
			t.Errorf("%s fetch kind %v status %+v", tr, fetch.SpanKind, fetch.Status)
		}
		if len(root.Events) == 0 || root.Events[0].Name != "log" {
			t.Errorf("%s: root events %+v", tr, root.Events)
		}
	}
	if msg := get("983a/GET").Events[0].Attributes[1].Value.AsString(); msg != "hello from main http://127.0.0.1:18080/a" {
		t.Errorf("log message %q", msg)
	}
	if k := get("983a/outer").SpanKind; k != trace.SpanKindInternal {
		t.Errorf("user span kind %v, want internal", k)
	}
	a := get("983a/GET")
	aa := attrMap(a)
	if aa["url.full"] != "http://127.0.0.1:18080/a" || aa["url.path"] != "/a" || aa["http.response.status_code"] != int64(200) ||
		aa["cloudflare.outcome"] != "ok" || a.Status.Code != codes.Ok {
		t.Errorf("root a: %v %+v", aa, a.Status)
	}
	bg := get("983a/background")
	ret := t0 // the return's time: 18:31:08.898
	ret = time.Date(2026, 11, 23, 18, 31, 8, 898e6, time.UTC)
	if bg.Parent != a.SpanID || !bg.End.After(ret) || !a.End.Equal(bg.End) || a.End.Before(bg.End) {
		t.Errorf("background %s..%s parent %s; root ends %s", bg.Start, bg.End, bg.Parent, a.End)
	}
	b := get("6bab/GET")
	if b.Status.Code != codes.Error || b.Status.Description != "Error: boom" || attrMap(b)["cloudflare.outcome"] != "exception" {
		t.Errorf("root b: %+v %v", b.Status, b.Attributes)
	}
	var ex *bridge.SpanEvent
	for i := range b.Events {
		if b.Events[i].Name == "exception" {
			ex = &b.Events[i]
		}
	}
	if ex == nil || !reflect.DeepEqual(ex.Attributes[:2], []attribute.KeyValue{attribute.String("exception.type", "Error"), attribute.String("exception.message", "boom")}) {
		t.Errorf("exception event %+v", ex)
	}
	if st.Unfinished != 0 || st.OpenSpans != 0 || st.Rejected != 0 || st.Gaps != 0 || st.NoOnset != 0 {
		t.Errorf("stats %+v", st)
	}

	// Captured from the pinned workerd: span.updateName and span.setStatus arrive as
	// spanUpdate events; the assembled spans carry the new name and the status.
	after, okspan, root := get("8ce0/after"), get("8ce0/okspan"), get("8ce0/GET")
	if after.Status != (bridge.Status{Code: codes.Error, Description: "bad thing"}) || attrMap(after)["k"] != "v" || after.Parent != root.SpanID {
		t.Errorf("renamed span %+v", after)
	}
	if okspan.Status != (bridge.Status{Code: codes.Ok}) {
		t.Errorf("okspan status %+v", okspan.Status)
	}
	var dc *bridge.SpanEvent
	for i := range root.Events {
		if root.Events[i].Name == "diagnostic_channel" {
			dc = &root.Events[i]
		}
	}
	if dc == nil || !reflect.DeepEqual(dc.Attributes, []attribute.KeyValue{attribute.String("diagnostic_channel.name", "my.channel"),
		attribute.String("diagnostic_channel.message", `{"hello":"world","n":3}`)}) {
		t.Errorf("diagnostic_channel event %+v among %+v", dc, root.Events)
	}
	// Synthetic: a named script, a truncated log, an outcome of exceededCpu.
	co := get("5ca1/checkout")
	if co.Status != (bridge.Status{Code: codes.Error, Description: "exceededCpu"}) || len(co.Events) != 1 ||
		!reflect.DeepEqual(co.Events[0].Attributes, []attribute.KeyValue{attribute.String("log.level", "warn"),
			attribute.String("log.message", `["cart contents:","xxxxxxxxxxxxxxxx`), attribute.Bool("log.truncated", true)}) {
		t.Errorf("checkout %+v", co)
	}
	for k, v := range map[string]string{"service.name": "shop-api", "service.version": "7f3c2a10-v42", "service.namespace": "tenants", "faas.name": "shop-api"} {
		if got, _ := co.Resource.Set().Value(attribute.Key(k)); got.AsString() != v {
			t.Errorf("checkout resource %s = %q, want %q", k, got.AsString(), v)
		}
	}
	if got, _ := root.Resource.Set().Value("service.name"); got.AsString() != bridge.UnknownService {
		t.Errorf("a script without a name: service.name %q", got.AsString())
	}
}

func TestWorkerdSample(t *testing.T) {
	a, col := newAssembler(t, newClock())
	consume(t, a, sample(t)...)
	checkSample(t, col, a.Stats())
	// The root of /a ends last of its trace, with the outcome, after the background span.
	var last bridge.Span
	for _, sp := range col.all() {
		if sp.TraceID.String()[:4] == "983a" {
			last = sp
		}
	}
	if last.Name != "GET" {
		t.Errorf("last span of trace 983a %s", last.Name)
	}
}

func TestWorkerdSampleShuffledAndRepeated(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	events := sample(t)
	for round := range 20 {
		evs := slices.Clone(events)
		rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		evs = append(evs, evs[:rng.Intn(len(evs))]...)
		a, col := newAssembler(t, newClock())
		for len(evs) > 0 {
			n := 1 + rng.Intn(5)
			n = min(n, len(evs))
			consume(t, a, evs[:n]...)
			evs = evs[n:]
		}
		checkSample(t, col, a.Stats())
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
}

func TestWorkerdRequestHeaders(t *testing.T) {
	a, col := newAssembler(t, newClock(), bridge.WithRequestHeaders("Host"))
	consume(t, a, sample(t)...)
	for _, s := range col.all() {
		if s.Name != "GET" {
			continue
		}
		m := attrMap(s)
		if h, _ := m["http.request.header.host"].([]string); len(h) != 1 || !strings.HasPrefix(h[0], "127.0.0.1:") || m["http.request.header.accept"] != nil {
			t.Errorf("headers on %v", m)
		}
	}
	// No name: no header at all.
	a, col = newAssembler(t, newClock(), bridge.WithRequestHeaders())
	consume(t, a, sample(t)...)
	for _, s := range col.all() {
		for _, kv := range s.Attributes {
			if strings.HasPrefix(string(kv.Key), "http.request.header.") {
				t.Errorf("%s on %s", kv.Key, s.Name)
			}
		}
	}
}

func TestInvocationEvents(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.Onset{ScriptName: "w", Entrypoint: "Main", ScriptVersion: "v1", Parent: spanID(99),
		Info: bridge.TriggerInfo{Type: "queue", QueueName: "jobs", BatchSize: 4}})
	s.add(2, 1, &bridge.SpanOpen{Name: "work", Parent: spanID(1)})
	s.add(2, 2, &bridge.Exception{Name: "TypeError", Message: "x is undefined", Stack: "at y"})
	s.add(2, 3, &bridge.Log{Level: "warn", Message: `["hi"]`})
	s.add(2, 4, &bridge.Log{Level: "log", Message: `["cut`, Truncated: true})
	s.add(2, 4, &bridge.DiagnosticChannel{Channel: "ch", Message: strings.Repeat("m", bridge.MaxLogMessageBytes+1)})
	s.add(1, 4, &bridge.Return{StatusCode: 503})
	s.add(1, 5, &bridge.StreamDiagnostic{DroppedEvents: 1})
	s.add(1, 6, &bridge.Outcome{Outcome: "exceededCpu", CPUTime: 50 * time.Millisecond, WallTime: 1500 * time.Microsecond})
	consume(t, a, s.evs...)
	root := col.byName(t, "process jobs")
	m := attrMap(root)
	for k, v := range map[string]any{
		"messaging.destination.name": "jobs", "messaging.batch.message_count": int64(4), "faas.name": nil,
		"cloudflare.script_name": "w", "cloudflare.entrypoint": "Main", "cloudflare.script_version": "v1",
		"http.response.status_code": int64(503), "stw.dropped_events": int64(1), "cloudflare.outcome": "exceededCpu",
		"cloudflare.cpu_time_ms": 50.0, "cloudflare.wall_time_ms": 1.5,
	} {
		if !reflect.DeepEqual(m[k], v) {
			t.Errorf("root %s = %#v, want %#v", k, m[k], v)
		}
	}
	if root.SpanKind != trace.SpanKindConsumer || root.Parent != spanID(99) || !root.RemoteParent ||
		root.Status != (bridge.Status{Code: codes.Error, Description: "exceededCpu"}) {
		t.Errorf("root %+v", root)
	}
	work := col.byName(t, "work")
	if !work.Unfinished || work.Status.Code != codes.Error || len(work.Events) != 4 ||
		work.Events[0].Name != "exception" || work.Events[1].Name != "log" ||
		!reflect.DeepEqual(work.Events[1].Attributes, []attribute.KeyValue{attribute.String("log.level", "warn"), attribute.String("log.message", "hi")}) {
		t.Errorf("work %+v", work)
	}
	if got := work.Events[2].Attributes; !reflect.DeepEqual(got, []attribute.KeyValue{
		attribute.String("log.level", "log"), attribute.String("log.message", `["cut`), attribute.Bool("log.truncated", true)}) {
		t.Errorf("truncated log event %v", got)
	}
	dc := work.Events[3]
	if dc.Name != "diagnostic_channel" || len(dc.Attributes) != 2 || dc.Attributes[0] != attribute.String("diagnostic_channel.name", "ch") ||
		dc.Attributes[1].Value.AsString() != strings.Repeat("m", bridge.MaxLogMessageBytes)+"…" {
		t.Errorf("diagnostic_channel event %v", dc)
	}
	// The invocation's Resource, made from the onset, is on all its spans, the
	// unfinished one too.
	for _, sp := range []bridge.Span{root, work} {
		if sp.Resource == nil {
			t.Fatalf("%s: no resource", sp.Name)
		}
		for k, v := range map[string]string{"service.name": "w", "service.version": "v1", "faas.name": "w", "faas.version": "v1",
			"cloud.provider": "cloudflare", "cloud.platform": "cloudflare.workers"} {
			if got, _ := sp.Resource.Set().Value(attribute.Key(k)); got.AsString() != v {
				t.Errorf("%s: resource %s = %q, want %q", sp.Name, k, got.AsString(), v)
			}
		}
	}
}

func TestInvocationResource(t *testing.T) {
	cases := []struct {
		onset bridge.Onset
		svc   bridge.ServiceName
		want  map[string]string
	}{
		{bridge.Onset{}, bridge.ServiceName{}, map[string]string{"service.name": bridge.UnknownService, "faas.name": "", "service.version": ""}},
		{bridge.Onset{}, bridge.ServiceName{Prefix: "cf-"}, map[string]string{"service.name": bridge.UnknownService}},
		{bridge.Onset{ScriptName: "api", ScriptVersion: "abc", DispatchNamespace: "tenants"}, bridge.ServiceName{Prefix: "cf-"},
			map[string]string{"service.name": "cf-api", "faas.name": "api", "service.version": "abc", "faas.version": "abc", "service.namespace": "tenants"}},
		{bridge.Onset{ScriptName: "api"}, bridge.ServiceName{Name: "edge"}, map[string]string{"service.name": "edge", "faas.name": "api"}},
		{bridge.Onset{}, bridge.ServiceName{Name: "edge", Prefix: "x."}, map[string]string{"service.name": "x.edge", "faas.name": ""}},
	}
	for _, c := range cases {
		r := bridge.InvocationResource(&c.onset, c.svc)
		for k, v := range c.want {
			if got, _ := r.Set().Value(attribute.Key(k)); got.AsString() != v {
				t.Errorf("%+v %+v: %s = %q, want %q", c.onset, c.svc, k, got.AsString(), v)
			}
		}
	}
}

// A Resource the onset event brings (stwingest's, with the forwarder's service name)
// is the one the invocation's spans carry; events with their own keep theirs.
func TestInvocationResourceFromOnsetEvent(t *testing.T) {
	a, col := newAssembler(t, newClock())
	res := resource.NewSchemaless(attribute.String("service.name", "given"))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.Onset{ScriptName: "w"})
	s.evs[0].Resource = res
	s.add(2, 1, &bridge.SpanOpen{Name: "child", Parent: spanID(1)})
	s.add(2, 2, &bridge.SpanEndData{})
	s.add(1, 3, &bridge.Outcome{Outcome: "ok"})
	consume(t, a, s.evs...)
	for _, sp := range col.all() {
		if sp.Resource != res {
			t.Errorf("%s: resource %v, want the onset's", sp.Name, sp.Resource)
		}
	}
}

func TestInvocationTriggers(t *testing.T) {
	cases := []struct {
		info  bridge.TriggerInfo
		name  string
		kind  trace.SpanKind
		attrs map[string]any
	}{
		{bridge.TriggerInfo{Type: "scheduled", Cron: "*/5 * * * *", ScheduledTime: t0}, "scheduled", trace.SpanKindInternal,
			map[string]any{"faas.cron": "*/5 * * * *", "faas.trigger": "timer", "faas.time": "2026-01-01T00:00:00.000Z"}},
		{bridge.TriggerInfo{Type: "alarm"}, "alarm", trace.SpanKindInternal, map[string]any{"faas.trigger": "timer"}},
		{bridge.TriggerInfo{Type: "jsrpc", MethodName: "add"}, "add", trace.SpanKindServer, map[string]any{"rpc.method": "add"}},
		{bridge.TriggerInfo{Type: "email", RawSize: 10}, "email", trace.SpanKindConsumer, map[string]any{"cloudflare.email.raw_size": int64(10)}},
		{bridge.TriggerInfo{Type: "fetch", Method: "POST", URL: "https://u:p@x.example/p?q=1",
			Headers: []bridge.Header{{Name: "Authorization", Value: "secret"}, {Name: "Cookie", Value: "c"}, {Name: "Content-Type", Value: "text/plain"}}},
			"POST", trace.SpanKindServer, map[string]any{"url.full": "https://x.example/p?q=1", "url.scheme": "https",
				"http.request.header.content-type": []string{"text/plain"}, "http.request.header.authorization": nil, "http.request.header.cookie": nil}},
		{bridge.TriggerInfo{Type: "custom"}, "custom", trace.SpanKindInternal, map[string]any{"cloudflare.trigger": "custom"}},
	}
	for _, c := range cases {
		a, col := newAssembler(t, newClock())
		s := &stream{id: sid}
		s.add(1, 0, &bridge.Onset{Info: c.info})
		s.add(1, 1, &bridge.Outcome{Outcome: "ok"})
		consume(t, a, s.evs...)
		sp := col.byName(t, c.name)
		m := attrMap(sp)
		for k, v := range c.attrs {
			if !reflect.DeepEqual(m[k], v) {
				t.Errorf("%s: %s = %#v, want %#v", c.name, k, m[k], v)
			}
		}
		if sp.SpanKind != c.kind || sp.Status.Code != codes.Ok {
			t.Errorf("%s: kind %v status %v", c.name, sp.SpanKind, sp.Status)
		}
	}
}

func TestEventsBeforeOnset(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c, bridge.WithReorderTimeout(time.Second))
	s := &stream{id: sid, seq: 1} // the onset (seq 0) never comes
	s.add(2, 0, &bridge.SpanOpen{Name: "child", Parent: spanID(1)})
	s.add(2, 1, &bridge.Log{Level: "log", Message: `[1]`})
	s.add(2, 2, &bridge.SpanEndData{})
	s.add(1, 3, &bridge.Outcome{Outcome: "ok"})
	consume(t, a, s.evs...)
	c.Add(time.Second)
	_ = a.Sweep(context.Background())
	sp := col.byName(t, "child")
	if sp.Parent != spanID(1) || len(sp.Events) != 1 {
		t.Errorf("child %+v", sp)
	}
	if st := a.Stats(); st.NoOnset != 1 || st.Gaps != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestInvocationServerErrorAndLongLog(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.Onset{Info: bridge.TriggerInfo{Type: "fetch", Method: "PUT", URL: "http://h/x"}})
	s.add(1, 1, &bridge.Log{Level: "info", Message: `["` + strings.Repeat("é", bridge.MaxLogMessageBytes) + `"]`})
	s.add(1, 2, &bridge.Return{StatusCode: 500})
	s.add(1, 3, &bridge.Outcome{Outcome: "ok"})
	consume(t, a, s.evs...)
	root := col.byName(t, "PUT")
	if root.Status != (bridge.Status{Code: codes.Error}) || attrMap(root)["http.response.status_code"] != int64(500) {
		t.Errorf("root %+v %v", root.Status, root.Attributes)
	}
	msg := root.Events[0].Attributes[1].Value.AsString()
	if len(msg) > bridge.MaxLogMessageBytes+len("…") || !strings.HasSuffix(msg, "…") || !utf8.ValidString(msg) {
		t.Errorf("log message of %d bytes", len(msg))
	}
}

func TestSecondOnsetRejected(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.Onset{Info: bridge.TriggerInfo{Type: "alarm"}})
	s.add(2, 0, &bridge.Onset{Info: bridge.TriggerInfo{Type: "alarm"}})
	s.add(1, 3, &bridge.Outcome{Outcome: "canceled"})
	consume(t, a, s.evs...)
	if sp := col.byName(t, "alarm"); sp.Status != (bridge.Status{Code: codes.Error, Description: "canceled"}) {
		t.Errorf("root %+v", sp.Status)
	}
	if st := a.Stats(); st.Rejected != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestLogMessageText(t *testing.T) {
	for msg, want := range map[string]string{
		`["n",1,{"a":true},null,"x y"]`: `n 1 {"a":true} null x y`,
		`[]`:                            ``,
		`"truncated [\"a`:               `"truncated [\"a`,
		`not json`:                      `not json`,
	} {
		a, col := newAssembler(t, newClock())
		s := &stream{id: sid}
		s.add(1, 0, &bridge.Onset{Info: bridge.TriggerInfo{Type: "alarm"}})
		s.add(1, 0, &bridge.Log{Level: "log", Message: msg})
		s.add(1, 0, &bridge.Outcome{Outcome: "ok"})
		consume(t, a, s.evs...)
		if got := col.byName(t, "alarm").Events[0].Attributes[1].Value.AsString(); got != want {
			t.Errorf("%s: %q, want %q", msg, got, want)
		}
	}
}

// workerd's fetch subrequest span becomes an HTTP client span; its numeric strings
// become ints, and the events it came from are not changed.
func TestSubrequestSpan(t *testing.T) {
	cases := []struct {
		name  string
		attrs []attribute.KeyValue
		want  map[string]any
		code  codes.Code
	}{
		{"server error", []attribute.KeyValue{
			attribute.String("url.full", "https://api.example:8443/x"), attribute.String("http.response.status_code", "503"),
			attribute.String("http.request.body.size", "12"), attribute.String("http.response.body.size", "n/a"),
		}, map[string]any{
			"http.response.status_code": int64(503), "http.request.body.size": int64(12), "http.response.body.size": "n/a",
			"server.address": "api.example", "server.port": int64(8443), "error.type": "503",
		}, codes.Error},
		{"ok, default port, port sent as a string", []attribute.KeyValue{
			attribute.String("url.full", "https://api.example/x"), attribute.String("http.response.status_code", "204"),
			attribute.String("server.port", "444"), attribute.String("server.address", "proxy"),
		}, map[string]any{
			"http.response.status_code": int64(204), "server.address": "proxy", "server.port": int64(444), "error.type": nil,
		}, codes.Unset},
		{"default port, client error", []attribute.KeyValue{
			attribute.String("url.full", "https://api.example/x"), attribute.Int("http.response.status_code", 404),
			attribute.String("error.type", "NotFound"),
		}, map[string]any{"server.port": int64(443), "error.type": "NotFound"}, codes.Error},
		{"uninterpretable code, no URL", []attribute.KeyValue{attribute.String("http.response.status_code", "99")},
			map[string]any{"http.response.status_code": int64(99), "error.type": "99", "server.address": nil}, codes.Error},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, col := newAssembler(t, newClock())
			s := &stream{id: sid}
			s.add(1, 0, &bridge.Onset{Info: bridge.TriggerInfo{Type: "fetch", Method: "GET", URL: "http://w/"}})
			s.add(2, 1, &bridge.SpanOpen{Name: "fetch", Parent: spanID(1), Attributes: c.attrs})
			s.add(2, 2, &bridge.Attributes{Attributes: c.attrs})
			s.add(2, 3, &bridge.SpanEndData{})
			s.add(1, 4, &bridge.Outcome{Outcome: "ok"})
			consume(t, a, s.evs...)
			sp := col.byName(t, "fetch")
			m := attrMap(sp)
			for k, v := range c.want {
				if !reflect.DeepEqual(m[k], v) {
					t.Errorf("%s = %#v, want %#v", k, m[k], v)
				}
			}
			if sp.SpanKind != trace.SpanKindClient || sp.Status.Code != c.code || sp.Status.Description != "" {
				t.Errorf("kind %v status %+v", sp.SpanKind, sp.Status)
			}
			if !reflect.DeepEqual(s.evs[1].Body.(*bridge.SpanOpen).Attributes, c.attrs) ||
				!reflect.DeepEqual(s.evs[2].Body.(*bridge.Attributes).Attributes, c.attrs) {
				t.Error("the events' attributes were changed")
			}
		})
	}
}

// Only workerd's own fetch span is mapped: not one with a kind, not one of a local
// stream; one emitted unfinished, or ended late, is mapped too.
func TestSubrequestSpanScope(t *testing.T) {
	status := []attribute.KeyValue{attribute.String("http.response.status_code", "500")}
	a, col := newAssembler(t, newClock(), bridge.WithOrphanAfter(time.Minute), bridge.WithStreamTimeout(time.Hour))
	local := &stream{id: bridge.StreamID{1}}
	local.add(1, 0, &bridge.SpanOpen{Name: "fetch", Attributes: status})
	local.add(1, 1, &bridge.SpanEndData{})
	inv := &stream{id: sid}
	inv.add(1, 0, &bridge.Onset{Info: bridge.TriggerInfo{Type: "alarm"}})
	inv.add(2, 1, &bridge.SpanOpen{Name: "fetch", Parent: spanID(1), SpanKind: trace.SpanKindServer, Attributes: status})
	inv.add(2, 2, &bridge.SpanEndData{})
	inv.add(3, 3, &bridge.SpanOpen{Name: "fetch", Parent: spanID(1), Attributes: status})
	consume(t, a, local.evs...)
	consume(t, a, inv.evs...)
	for _, sp := range col.all() {
		if sp.SpanKind == trace.SpanKindClient || attrMap(sp)["http.response.status_code"] != "500" {
			t.Errorf("span %+v mapped", sp)
		}
	}
	c := newClock()
	a, col = newAssembler(t, c, bridge.WithOrphanAfter(time.Minute), bridge.WithStreamTimeout(time.Hour))
	consume(t, a, inv.evs...)
	c.Add(2 * time.Minute)
	_ = a.Sweep(context.Background())
	consume(t, a, inv.add(3, 4, &bridge.SpanEndData{}))
	var spans []bridge.Span // span 3: unfinished, then its late real end
	for _, sp := range col.all() {
		if sp.SpanID == spanID(3) {
			spans = append(spans, sp)
		}
	}
	if len(spans) != 2 {
		t.Fatalf("spans %v", names(col.all()))
	}
	for _, sp := range spans {
		if sp.SpanKind != trace.SpanKindClient || attrMap(sp)["http.response.status_code"] != int64(500) || sp.Status.Code != codes.Error {
			t.Errorf("span %+v", sp)
		}
	}
	if !spans[0].Unfinished || spans[1].Unfinished || spans[1].Status.Description != "" {
		t.Errorf("unfinished %+v, late %+v", spans[0].Status, spans[1].Status)
	}
}

// A workerd invocation snapshotted mid-way and restored in a new assembler ends as the
// same spans as one assembled without a break.
func TestInvocationSnapshotRestores(t *testing.T) {
	s := &stream{id: sid}
	s.add(1, 0, &bridge.Onset{ScriptName: "w", Info: bridge.TriggerInfo{Type: "fetch", Method: "GET", URL: "http://h/x"}})
	s.add(2, 1, &bridge.SpanOpen{Name: "work", Parent: spanID(1)})
	s.add(2, 2, &bridge.Exception{Name: "TypeError", Message: "x is undefined"})
	s.add(9, 3, &bridge.Log{Level: "warn", Message: `["on the root"]`}) // its span is not open: the root's
	s.add(1, 4, &bridge.Return{StatusCode: 503})
	s.add(2, 5, &bridge.SpanEndData{})
	rest := s.add(1, 6, &bridge.Outcome{Outcome: "ok"})

	direct, want := newAssembler(t, newClock())
	consume(t, direct, s.evs...)

	before, _ := newAssembler(t, newClock(), bridge.WithKeepEvents())
	consume(t, before, s.evs[:5]...)
	snap := before.Snapshot()
	after, got := newAssembler(t, newClock())
	consume(t, after, snap...)
	consume(t, after, s.evs[5], rest)
	for _, name := range []string{"GET", "work"} {
		w, g := want.byName(t, name), got.byName(t, name)
		if !reflect.DeepEqual(attrMap(w), attrMap(g)) || len(w.Events) != len(g.Events) || w.Status != g.Status ||
			!w.End.Equal(g.End) || w.Unfinished != g.Unfinished {
			t.Errorf("%s restored as %+v, want %+v", name, g, w)
		}
	}
}
