package stwingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stwbridge/stwbridge/bridge"
)

// recorder is a Publisher that keeps what it is given and refuses after limit events
// (limit < 0: never).
type recorder struct {
	mu     sync.Mutex
	events []bridge.Event
	limit  int
}

func newRecorder() *recorder { return &recorder{limit: -1} }

func (r *recorder) Publish(e bridge.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.limit >= 0 && len(r.events) >= r.limit {
		return false
	}
	r.events = append(r.events, e)
	return true
}

func (r *recorder) all() []bridge.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Event(nil), r.events...)
}

// The sample's events: all but those of its unsampled invocation (testdata/README.md)
// are published.
const (
	sampleUnsampled = 3
	sampleAccepted  = 44 - sampleUnsampled
)

func sample(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/workerd-stw-sample.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sampleLines(t testing.TB) []string {
	return strings.Split(strings.TrimSpace(string(sample(t))), "\n")
}

// post sends body to h and decodes the answer.
func post(t testing.TB, h http.Handler, body []byte, header map[string]string) (int, Response, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/stw", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp Response
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("response content type %q, want application/json", ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response is not JSON: %v: %q", err, rec.Body.String())
	}
	return rec.Code, resp, rec.Header()
}

// checkOrdered fails unless the events of each stream come in sequence order.
func checkOrdered(t *testing.T, events []bridge.Event) {
	t.Helper()
	last := map[bridge.StreamID]uint64{}
	for _, e := range events {
		if prev, ok := last[e.StreamID]; ok && e.Sequence < prev {
			t.Fatalf("stream %s: sequence %d after %d", e.StreamID, e.Sequence, prev)
		}
		last[e.StreamID] = e.Sequence
	}
}

func TestSampleNDJSON(t *testing.T) {
	pub := newRecorder()
	h := NewHandler(pub)
	code, resp, _ := post(t, h, sample(t), nil)
	if code != http.StatusOK || resp.Accepted != sampleAccepted || resp.Rejected != 0 || resp.Unknown != 0 || len(resp.Errors) != 0 {
		t.Fatalf("got %d %+v, want 200 with %d accepted", code, resp, sampleAccepted)
	}
	events := pub.all()
	if len(events) != sampleAccepted {
		t.Fatalf("published %d events, want %d", len(events), sampleAccepted)
	}
	checkOrdered(t, events)
	streams := map[bridge.StreamID]int{}
	kinds := map[bridge.Kind]int{}
	for _, e := range events {
		streams[e.StreamID]++
		kinds[e.Kind()]++
	}
	if len(streams) != 3 {
		t.Errorf("got %d invocations, want 3", len(streams))
	}
	for k, n := range map[bridge.Kind]int{bridge.KindOnset: 3, bridge.KindOutcome: 3, bridge.KindException: 1, bridge.KindReturn: 2, bridge.KindLog: 3,
		bridge.KindUpdateName: 1, bridge.KindStatus: 2, bridge.KindDiagnosticChannel: 1} {
		if kinds[k] != n {
			t.Errorf("%d events of kind %s, want %d", kinds[k], k, n)
		}
	}
	if s := h.Stats(); s != (Stats{Requests: 1, Events: sampleAccepted, Unsampled: sampleUnsampled}) {
		t.Errorf("stats %+v", s)
	}
}

func TestJSONArray(t *testing.T) {
	pub := newRecorder()
	h := NewHandler(pub)
	body := "[" + strings.Join(sampleLines(t), ",\n") + "]"
	code, resp, _ := post(t, h, []byte(body), map[string]string{"Content-Type": "application/json; charset=utf-8"})
	if code != http.StatusOK || resp.Accepted != sampleAccepted {
		t.Fatalf("got %d %+v, want 200 with %d accepted", code, resp, sampleAccepted)
	}
	checkOrdered(t, pub.all())
}

func TestNoContentType(t *testing.T) {
	code, resp, _ := post(t, NewHandler(newRecorder()), sample(t), map[string]string{"Content-Type": ""})
	if code != http.StatusOK || resp.Accepted != sampleAccepted {
		t.Fatalf("got %d %+v", code, resp)
	}
}

func TestGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(sample(t))
	zw.Close()
	pub := newRecorder()
	code, resp, _ := post(t, NewHandler(pub), buf.Bytes(), map[string]string{"Content-Encoding": "gzip"})
	if code != http.StatusOK || resp.Accepted != sampleAccepted {
		t.Fatalf("got %d %+v", code, resp)
	}

	code, resp, _ = post(t, NewHandler(pub), []byte("not gzip at all"), map[string]string{"Content-Encoding": "gzip"})
	if code != http.StatusBadRequest || !strings.Contains(resp.Message, "gzip") {
		t.Fatalf("bad gzip: got %d %+v, want 400 naming gzip", code, resp)
	}
}

// Events of one invocation that arrive shuffled within a request are published in
// sequence order.
func TestOrdersBySequenceWithinRequest(t *testing.T) {
	lines := sampleLines(t)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	pub := newRecorder()
	code, resp, _ := post(t, NewHandler(pub), []byte(strings.Join(lines, "\n")), nil)
	if code != http.StatusOK || resp.Accepted != sampleAccepted {
		t.Fatalf("got %d %+v", code, resp)
	}
	events := pub.all()
	checkOrdered(t, events)
	// Invocations stay together.
	seen := map[bridge.StreamID]bool{}
	for i, e := range events {
		if i > 0 && events[i-1].StreamID != e.StreamID && seen[e.StreamID] {
			t.Fatalf("stream %s split in two runs", e.StreamID)
		}
		seen[e.StreamID] = true
	}
}

// A malformed line costs only itself: the good events beside it are published.
func TestMalformedBesideGood(t *testing.T) {
	lines := sampleLines(t)
	bad := []string{
		`{"invocationId":"36ea23f65aa0585be81336c1f2b06c87",`,                              // truncated JSON
		strings.Replace(lines[2], `"spanId":"4e667ec42c103d0b"}}`, `"spanId":"4e66"}}`, 1), // span id too short
		strings.Replace(lines[3], `"traceId":"983a4641c7fed86130cb5bf175732ce5"`, `"traceId":"zz"`, 1),
	}
	body := strings.Join(append(append([]string{}, lines[:2]...), bad...), "\n")
	pub := newRecorder()
	h := NewHandler(pub)
	code, resp, _ := post(t, h, []byte(body), nil)
	if code != http.StatusOK {
		t.Fatalf("got %d %+v, want 200", code, resp)
	}
	if resp.Accepted != 2 || resp.Rejected != 3 || len(resp.Errors) != 3 {
		t.Fatalf("got %+v, want 2 accepted, 3 rejected with 3 messages", resp)
	}
	for _, msg := range resp.Errors {
		if msg == "" {
			t.Error("empty error message")
		}
	}
	if s := h.Stats(); s.Events != 2 || s.Rejected != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestNothingValid(t *testing.T) {
	for name, body := range map[string]string{
		"text":       "hello, world",
		"array":      `[1, 2, "x"]`,
		"wrong ids":  `{"spanContext":{"traceId":"00"},"invocationId":"01","timestamp":"2026-11-23T18:31:08.884Z","sequence":0,"event":{"type":"onset","spanId":"01","executionModel":"stateless","info":{"type":"fetch","method":"GET","url":"/","headers":[]}}}`,
		"truncation": `[{"spanContext":`,
	} {
		t.Run(name, func(t *testing.T) {
			pub := newRecorder()
			code, resp, _ := post(t, NewHandler(pub), []byte(body), nil)
			if code != http.StatusBadRequest || resp.Accepted != 0 || resp.Rejected == 0 || resp.Message == "" || len(resp.Errors) == 0 {
				t.Fatalf("got %d %+v, want 400 with a message and errors", code, resp)
			}
			if len(pub.all()) != 0 {
				t.Fatal("something was published")
			}
		})
	}
}

func TestEmptyBody(t *testing.T) {
	code, resp, _ := post(t, NewHandler(newRecorder()), nil, nil)
	if code != http.StatusOK || resp.Accepted != 0 || resp.Rejected != 0 {
		t.Fatalf("got %d %+v, want 200 with nothing", code, resp)
	}
}

// Unknown event types are accepted, skipped and counted (forward compatibility).
func TestUnknownType(t *testing.T) {
	lines := sampleLines(t)
	future := strings.Replace(lines[1], `"type":"log","level":"log","message":["hello from main","http://127.0.0.1:18080/a"]`, `"type":"spanUpdate","info":{"type":"somethingNew"}`, 1)
	if future == lines[1] {
		t.Fatal("test setup: replacement did not apply")
	}
	pub := newRecorder()
	h := NewHandler(pub)
	code, resp, _ := post(t, h, []byte(lines[0]+"\n"+future+"\n"+lines[2]), nil)
	if code != http.StatusOK || resp.Accepted != 2 || resp.Unknown != 1 || resp.Rejected != 0 || len(resp.Errors) != 0 {
		t.Fatalf("got %d %+v, want 200, 2 accepted, 1 unknown", code, resp)
	}
	// A request of unknown events only is still fine.
	code, resp, _ = post(t, h, []byte(future), nil)
	if code != http.StatusOK || resp.Unknown != 1 {
		t.Fatalf("unknown only: got %d %+v, want 200", code, resp)
	}
	if s := h.Stats(); s.Unknown != 2 || s.Rejected != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestMaxErrors(t *testing.T) {
	body := strings.Repeat("{bad}\n", 20)
	_, resp, _ := post(t, NewHandler(newRecorder()), []byte(body), nil)
	if resp.Rejected != 20 || len(resp.Errors) != DefaultMaxErrors {
		t.Fatalf("default: got %d rejected, %d messages", resp.Rejected, len(resp.Errors))
	}
	_, resp, _ = post(t, NewHandler(newRecorder(), withMaxErrors(2)), []byte(body), nil)
	if resp.Rejected != 20 || len(resp.Errors) != 2 {
		t.Fatalf("withMaxErrors(2): got %d rejected, %d messages", resp.Rejected, len(resp.Errors))
	}
}

func TestTooLarge(t *testing.T) {
	data := sample(t)
	limit := int64(len(data) - 1)

	h := NewHandler(newRecorder(), WithMaxBodyBytes(limit))
	code, resp, _ := post(t, h, data, nil)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(resp.Message, "limit") {
		t.Fatalf("with Content-Length: got %d %+v, want 413", code, resp)
	}

	// Without a Content-Length (chunked), the reader enforces the limit.
	req := httptest.NewRequest(http.MethodPost, "/v1/stw", io.MultiReader(bytes.NewReader(data)))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: got %d %s, want 413", rec.Code, rec.Body)
	}

	// The limit holds after decompression: a small gzip body that inflates too far.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(bytes.Repeat([]byte(" "), 1<<20))
	zw.Close()
	code, _, _ = post(t, NewHandler(newRecorder(), WithMaxBodyBytes(64<<10)), buf.Bytes(), map[string]string{"Content-Encoding": "gzip"})
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("gzip bomb: got %d, want 413", code)
	}

	// Exactly at the limit is fine.
	code, resp, _ = post(t, NewHandler(newRecorder(), WithMaxBodyBytes(int64(len(data)))), data, nil)
	if code != http.StatusOK || resp.Accepted != sampleAccepted {
		t.Fatalf("at the limit: got %d %+v", code, resp)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req := httptest.NewRequest(m, "/v1/stw", nil)
		rec := httptest.NewRecorder()
		NewHandler(newRecorder()).ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
			t.Errorf("%s: got %d, Allow %q; want 405, POST", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestUnsupportedMedia(t *testing.T) {
	h := NewHandler(newRecorder())
	for name, hdr := range map[string]map[string]string{
		"protobuf": {"Content-Type": "application/x-protobuf"},
		"garbage":  {"Content-Type": "/;;"},
		"br":       {"Content-Encoding": "br"},
	} {
		code, resp, _ := post(t, h, sample(t), hdr)
		if code != http.StatusUnsupportedMediaType || resp.Message == "" {
			t.Errorf("%s: got %d %+v, want 415 with a message", name, code, resp)
		}
	}
}

func TestDropped(t *testing.T) {
	pub := newRecorder()
	pub.limit = 10
	h := NewHandler(pub)
	code, resp, _ := post(t, h, sample(t), nil)
	if code != http.StatusOK || resp.Accepted != 10 || resp.Dropped != sampleAccepted-10 {
		t.Fatalf("partial: got %d %+v, want 200, 10 accepted, %d dropped", code, resp, sampleAccepted-10)
	}
	// Nothing taken: 503, so the tail worker retries without making duplicates.
	code, resp, hdr := post(t, h, sample(t), nil)
	if code != http.StatusServiceUnavailable || resp.Dropped != sampleAccepted || hdr.Get("Retry-After") == "" {
		t.Fatalf("full: got %d %+v, want 503 with Retry-After", code, resp)
	}
	if s := h.Stats(); s.Dropped != 2*sampleAccepted-10 || s.Events != 10 || s.Requests != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	post(t, NewHandler(newRecorder(), WithLogger(logger)), []byte("{bad}"), nil)
	if !strings.Contains(buf.String(), "rejected=1") {
		t.Fatalf("log %q does not report the rejected event", buf.String())
	}
}

// Through a real HTTP server and client, as stwbridge mounts it.
func TestOverHTTP(t *testing.T) {
	pub := newRecorder()
	mux := http.NewServeMux()
	mux.Handle("/v1/stw", NewHandler(pub))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/v1/stw", bytes.NewReader(sample(t)))
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var resp Response
	if err := json.NewDecoder(res.Body).Decode(&resp); err != nil || res.StatusCode != 200 || resp.Accepted != sampleAccepted {
		t.Fatalf("got %d %+v %v", res.StatusCode, resp, err)
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("héllo", 2); got != "h…" {
		t.Errorf("truncate on a rune boundary: %q", got)
	}
	if got := truncate("abc", 5); got != "abc" {
		t.Errorf("short string changed: %q", got)
	}
}

// FuzzServeHTTP feeds arbitrary bodies, plain and as gzip: the handler must answer
// with JSON, never panic, and publish only events with a body, in sequence order.
func FuzzServeHTTP(f *testing.F) {
	data := sample(f)
	f.Add(data, false)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	f.Add([]byte("["+strings.Join(lines[:5], ",")+"]"), false)
	for _, l := range lines[:14] {
		f.Add([]byte(l), false)
	}
	f.Add([]byte(lines[0]), true)
	f.Add([]byte(`{"spanContext":{"traceId":"x"},"event":{"type":"nope"}}`), false)
	f.Add([]byte(`[{"sequence":-1},null,{"event":null}]`), false)
	f.Add([]byte("\xff\xfe{"), false)
	f.Fuzz(func(t *testing.T, body []byte, gz bool) {
		pub := newRecorder()
		h := NewHandler(pub, WithMaxBodyBytes(1<<20))
		hdr := map[string]string{}
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(body)
			zw.Close()
			body = buf.Bytes()
			hdr["Content-Encoding"] = "gzip"
		}
		code, resp, _ := post(t, h, body, hdr)
		switch code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d %+v", code, resp)
		}
		events := pub.all()
		if resp.Accepted != len(events) {
			t.Fatalf("response says %d accepted, %d published", resp.Accepted, len(events))
		}
		for _, e := range events {
			if e.Body == nil {
				t.Fatalf("published an invalid event %+v", e)
			}
		}
		checkOrdered(t, events)
	})
}

func TestNilPublisher(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "Publisher") {
			t.Fatalf("NewHandler(nil) recovered %v, want a panic naming the Publisher", r)
		}
	}()
	NewHandler(nil)
}

// Events whose onset is not in the request (it came earlier, or never) are accepted:
// the assembler pairs them across requests and counts the ones without an onset.
func TestEventsWithoutOnset(t *testing.T) {
	lines := sampleLines(t)
	pub := newRecorder()
	code, resp, _ := post(t, NewHandler(pub), []byte(strings.Join(lines[1:4], "\n")), nil)
	if code != http.StatusOK || resp.Accepted != 3 || resp.Rejected != 0 {
		t.Fatalf("got %d %+v, want 200 with 3 accepted", code, resp)
	}
}

// withMaxErrors sets how many error messages a response lists at most.
func withMaxErrors(n int) Option { return func(o *Options) { o.MaxErrors = n } }

// invocationLines returns the NDJSON of one invocation: onset (with the given
// spanContext extra, e.g. traceFlags, and onset fields), a span opened and closed, and
// the outcome.
func invocationLines(id, spanCtx, onsetFields string) []string {
	ctx := `{"traceId":"983a4641c7fed86130cb5bf175732ce5"` + spanCtx + `}`
	in := func(seq int, ev string) string {
		return fmt.Sprintf(`{"spanContext":%s,"invocationId":"%s","timestamp":"2026-11-23T18:31:08.884Z","sequence":%d,"event":%s}`, ctx, id, seq, ev)
	}
	child := func(seq int, ev string) string {
		return fmt.Sprintf(`{"spanContext":{"traceId":"983a4641c7fed86130cb5bf175732ce5","spanId":"00000000000000a1"},"invocationId":"%s","timestamp":"2026-11-23T18:31:08.890Z","sequence":%d,"event":%s}`, id, seq, ev)
	}
	return []string{
		in(0, `{"type":"onset","executionModel":"stateless","spanId":"00000000000000a1"`+onsetFields+`,"info":{"type":"fetch","method":"GET","url":"http://x/","headers":[]}}`),
		child(1, `{"type":"spanOpen","name":"work","spanId":"00000000000000b2"}`),
		strings.Replace(child(2, `{"type":"spanClose","outcome":"ok"}`), "00000000000000a1", "00000000000000b2", 1),
		child(3, `{"type":"outcome","outcome":"ok","cpuTime":0,"wallTime":0}`),
	}
}

const (
	inv1 = "36ea23f65aa0585be81336c1f2b06c87"
	inv2 = "d2b44b7b44c481854d736332214101de"
)

func serviceOf(e bridge.Event) string {
	if e.Resource == nil {
		return ""
	}
	v, _ := e.Resource.Set().Value("service.name")
	return v.AsString()
}

// Every event of an invocation carries its Resource, across requests, with the
// service name the forwarder's options make; invocations of one script share it.
func TestInvocationResource(t *testing.T) {
	pub := newRecorder()
	h := NewHandler(pub, WithService(bridge.ServiceName{Prefix: "cf-"}))
	a := invocationLines(inv1, "", `,"scriptName":"api","scriptVersion":{"id":"v7"}`)
	b := invocationLines(inv2, "", `,"scriptName":"api","scriptVersion":{"id":"v7"}`)
	for _, body := range []string{a[0] + "\n" + b[0], a[1] + "\n" + a[2], b[1] + "\n" + b[2] + "\n" + b[3], a[3]} {
		if code, resp, _ := post(t, h, []byte(body), nil); code != http.StatusOK || resp.Rejected != 0 {
			t.Fatalf("%d %+v", code, resp)
		}
	}
	events := pub.all()
	if len(events) != 8 {
		t.Fatalf("%d events", len(events))
	}
	for _, e := range events {
		if got := serviceOf(e); got != "cf-api" {
			t.Errorf("%s event %d: service.name %q, want cf-api", e.StreamID, e.Sequence, got)
		}
		if e.Resource != events[0].Resource {
			t.Errorf("%s event %d: a Resource of its own, not the shared one", e.StreamID, e.Sequence)
		}
		if v, _ := e.Resource.Set().Value("service.version"); v.AsString() != "v7" {
			t.Errorf("service.version %q", v.AsString())
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.inv) != 0 {
		t.Errorf("%d invocations still tracked after their outcomes", len(h.inv))
	}

	// Without a script name nor an override: unknown_service:workerd.
	pub = newRecorder()
	post(t, NewHandler(pub), []byte(strings.Join(invocationLines(inv1, "", ""), "\n")), nil)
	if got := serviceOf(pub.all()[0]); got != bridge.UnknownService {
		t.Errorf("service.name %q, want %s", got, bridge.UnknownService)
	}
}

// An invocation whose onset says an upstream did not sample it is dropped whole and
// counted, unless WithExportUnsampled; absent or sampled flags are exported.
func TestUnsampledInvocations(t *testing.T) {
	body := []byte(strings.Join(append(invocationLines(inv1, `,"traceFlags":0`, ""), invocationLines(inv2, `,"traceFlags":1`, "")...), "\n"))
	pub := newRecorder()
	h := NewHandler(pub)
	code, resp, _ := post(t, h, body, nil)
	if code != http.StatusOK || resp.Accepted != 4 || resp.Unsampled != 4 || h.Stats().Unsampled != 4 {
		t.Fatalf("%d %+v %+v", code, resp, h.Stats())
	}
	for _, e := range pub.all() {
		if e.StreamID.String() != inv2 {
			t.Errorf("event %d of the unsampled invocation published", e.Sequence)
		}
	}
	pub = newRecorder()
	h = NewHandler(pub, WithExportUnsampled(true))
	if _, resp, _ := post(t, h, body, nil); resp.Accepted != 8 || resp.Unsampled != 0 {
		t.Errorf("WithExportUnsampled: %+v", resp)
	}
}

// Past MaxInvocations the oldest invocation is forgotten, counted; its later events
// carry no Resource, the others keep theirs.
func TestMaxInvocations(t *testing.T) {
	pub := newRecorder()
	h := NewHandler(pub, WithMaxInvocations(1))
	a := invocationLines(inv1, "", `,"scriptName":"a"`)
	b := invocationLines(inv2, "", `,"scriptName":"b"`)
	post(t, h, []byte(a[0]+"\n"+b[0]), nil)
	post(t, h, []byte(a[1]+"\n"+b[1]), nil)
	if got := h.Stats().Forgotten; got != 1 {
		t.Fatalf("forgotten %d, want 1", got)
	}
	for _, e := range pub.all() {
		want := map[string]string{inv1: "a", inv2: "b"}[e.StreamID.String()]
		if e.Sequence == 1 && e.StreamID.String() == inv1 {
			want = ""
		}
		if got := serviceOf(e); got != want {
			t.Errorf("%s event %d: service %q, want %q", e.StreamID, e.Sequence, got, want)
		}
	}
}
