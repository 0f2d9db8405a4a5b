package tailcli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/live"
)

var (
	res     = resource.NewSchemaless(attribute.String("service.name", "checkout"))
	tidA    = trace.TraceID{0: 0x4b, 15: 1}
	spanA   = trace.SpanID{0: 0x0f, 7: 1}
	spanB   = trace.SpanID{0: 0x0f, 7: 2}
	streamA = bridge.StreamID{0: 1}
)

func bOpen(s, parent trace.SpanID, name string, at time.Time) bridge.Event {
	return bridge.Event{TraceID: tidA, SpanID: s, StreamID: streamA, Time: at, Resource: res,
		Body: &bridge.SpanOpen{Name: name, Parent: parent, SpanKind: trace.SpanKindServer}}
}

func bRename(s trace.SpanID, name string) bridge.Event {
	return bridge.Event{TraceID: tidA, SpanID: s, StreamID: streamA, Time: time.Now(), Resource: res, Body: &bridge.UpdateName{Name: name}}
}

func bEnd(s trace.SpanID, at time.Time, code codes.Code) bridge.Event {
	return bridge.Event{TraceID: tidA, SpanID: s, StreamID: streamA, Time: at, Resource: res,
		Body: &bridge.SpanEndData{Status: bridge.Status{Code: code}}}
}

// liveServer serves a hub at /v1/live, as the forwarder does.
func liveServer(t *testing.T) (*live.Hub, *httptest.Server) {
	t.Helper()
	h := live.NewHub()
	mux := http.NewServeMux()
	mux.Handle("GET /v1/live", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		h.Shutdown(context.Background())
		srv.Close()
	})
	return h, srv
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runTail runs Run in the background with stdout into a pipe whose lines come out of
// the returned channel; stop cancels it and returns the exit code and stderr.
func runTail(t *testing.T, args ...string) (lines <-chan string, stop func() (int, string)) {
	t.Helper()
	return runTailTo(t, false, args...)
}

// runTailTo is runTail; with file, stdout is an *os.File (a pipe), not an io.Pipe.
func runTailTo(t *testing.T, file bool, args ...string) (<-chan string, func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var r io.Reader
	var w io.WriteCloser
	if !file {
		pr, pw := io.Pipe()
		r, w = pr, pw
	} else {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r, w = pr, pw
	}
	out := make(chan string, 100)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			out <- sc.Text()
		}
	}()
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		var o io.Writer = w
		code <- Run(ctx, args, o, &stderr)
		w.Close()
	}()
	return out, func() (int, string) {
		cancel()
		select {
		case c := <-code:
			return c, stderr.String()
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return within 20s of its context ending")
			return 0, ""
		}
	}
}

type syncBuffer = testenv.SyncBuffer

func next(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("output ended")
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("no output line within 20s")
	}
	return ""
}

func TestJSONFormat(t *testing.T) {
	h, srv := liveServer(t)
	lines, stop := runTail(t, "--from", srv.URL, "--format", "json", "--service", "checkout")
	waitFor(t, "tail to connect", func() bool { return h.Stats().Watchers == 1 })
	start := time.Now().Add(-time.Second)
	h.Consume(t.Context(), []bridge.Event{bOpen(spanA, trace.SpanID{}, "GET", start)})
	h.Consume(t.Context(), []bridge.Event{bRename(spanA, "GET /users/:id")})
	h.Consume(t.Context(), []bridge.Event{bEnd(spanA, start.Add(1200*time.Millisecond), codes.Ok)})

	var got []live.Event
	for range 3 {
		var e live.Event
		l := next(t, lines)
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		got = append(got, e)
	}
	if got[0].Type != "span_open" || got[0].Name != "GET" || got[0].TraceID != tidA.String() || got[0].Service != "checkout" ||
		got[1].Type != "update_name" || got[1].Name != "GET /users/:id" || got[1].OldName != "GET" ||
		got[2].Type != "span_end" || got[2].DurationNS != int64(1200*time.Millisecond) || got[2].Status.Code != "ok" {
		t.Fatalf("events: %+v", got)
	}
	code, stderr := stop()
	if code != 0 || !strings.Contains(stderr, "watching "+srv.URL) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestPlainWhenNotATerminal(t *testing.T) {
	h, srv := liveServer(t)
	// Default format (pretty) into a file that is not a terminal: plain lines.
	lines, stop := runTailTo(t, true, "--from", srv.URL+"/", "--search", "users")
	waitFor(t, "tail to connect", func() bool { return h.Stats().Watchers == 1 })
	start := time.Now()
	h.Consume(t.Context(), []bridge.Event{
		bOpen(spanA, trace.SpanID{}, "GET /users", start),
		bOpen(spanB, spanA, "SELECT", start),
		bRename(spanA, "GET /users/:id"),
		bEnd(spanA, start.Add(40*time.Millisecond), codes.Error),
	})
	want := []string{"open        GET /users", "rename      GET /users/:id ← GET /users", "end         GET /users/:id  40.0ms  error"}
	for _, w := range want {
		l := next(t, lines)
		if !strings.Contains(l, w) || !strings.Contains(l, "checkout") || !strings.Contains(l, tidA.String()[:8]) {
			t.Fatalf("line %q, want it to contain %q", l, w)
		}
		if strings.ContainsRune(l, '\x1b') {
			t.Fatalf("escape code in plain output: %q", l)
		}
	}
	if code, _ := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--status", "maybe"}, 2, `--status "maybe" is not one of error, ok, unfinished`},
		{[]string{"--trace-id", "xyz"}, 2, "--trace-id"},
		{[]string{"--format", "yaml"}, 2, `--format "yaml"`},
		{[]string{"--from", "127.0.0.1:4318"}, 2, "not an http:// or https:// URL"},
		{[]string{"--min-open", "-1s"}, 2, "negative"},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
		{[]string{"GET"}, 2, "unexpected argument"},
		{[]string{"-h"}, 0, "usage: stwbridge tail"},
	} {
		var stderr bytes.Buffer
		code := Run(t.Context(), tc.args, io.Discard, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("Run(%q) = %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
	cfg, err := parseFlags([]string{"--from", "https://b:1/", "--service", "s", "--search", "q", "--status", "unfinished",
		"--trace-id", "4BF92F3577B34DA6A3CE929D0E0E4736", "--min-open", "2s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := "https://b:1/v1/live?keepalive=5s&min_open=2s&search=q&service=s&status=unfinished&trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
	if got := cfg.liveURL(); got != want {
		t.Fatalf("liveURL = %s\nwant       %s", got, want)
	}
}

func TestServerRefusal(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	var stderr bytes.Buffer
	code := Run(t.Context(), []string{"--from", srv.URL, "--format", "json"}, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "404") || !strings.Contains(stderr.String(), "live endpoint") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestReconnect(t *testing.T) {
	// The stream is served by one hub, then (after it shuts down) by another.
	var current atomic.Pointer[live.Hub]
	first, second := live.NewHub(), live.NewHub()
	current.Store(first)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		current.Load().ServeHTTP(w, r)
	}))
	defer srv.Close()
	defer second.Shutdown(context.Background())

	lines, stop := runTail(t, "--from", srv.URL, "--format", "json")
	waitFor(t, "tail to connect", func() bool { return first.Stats().Watchers == 1 })
	first.Consume(t.Context(), []bridge.Event{bOpen(spanA, trace.SpanID{}, "before", time.Now())})
	if l := next(t, lines); !strings.Contains(l, `"before"`) {
		t.Fatalf("got %q", l)
	}
	current.Store(second)
	first.Shutdown(t.Context())
	waitFor(t, "tail to reconnect", func() bool { return second.Stats().Watchers == 1 })
	second.Consume(t.Context(), []bridge.Event{bOpen(spanB, trace.SpanID{}, "after", time.Now())})
	if l := next(t, lines); !strings.Contains(l, `"after"`) {
		t.Fatalf("got %q", l)
	}
	code, stderr := stop()
	if code != 0 || !strings.Contains(stderr, "the server ended the stream; retrying in") || requests.Load() != 2 {
		t.Fatalf("exit %d, %d requests, stderr %q", code, requests.Load(), stderr)
	}
}

func TestIdleConnectionIsDropped(t *testing.T) {
	// A server that accepts the stream and then says nothing, not even keep-alives.
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	var states []connState
	var mu sync.Mutex
	s := &stream{
		url: srv.URL, client: &http.Client{}, idle: 50 * time.Millisecond, minDelay: time.Millisecond, maxDelay: 5 * time.Millisecond,
		deliver: func([]item) {},
		status: func(c connState) {
			mu.Lock()
			states = append(states, c)
			mu.Unlock()
		},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	waitFor(t, "two reconnections", func() bool { return requests.Load() >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var sawIdle bool
	for _, c := range states {
		if c.err != nil && strings.Contains(c.err.Error(), "no data for 50ms") {
			sawIdle = true
		}
	}
	if !sawIdle {
		t.Fatalf("states %+v: no idle timeout reported", states)
	}
}

func TestReadLine(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("a\r\n\n"+strings.Repeat("x", 100)+"\nlast"), 16)
	for _, want := range []string{"a", "", strings.Repeat("x", 100), "last"} {
		l, err := readLine(br)
		if err != nil || string(l) != want {
			t.Fatalf("readLine = %q, %v; want %q", l, err, want)
		}
	}
	if _, err := readLine(br); err != io.EOF {
		t.Fatalf("at the end: %v, want EOF", err)
	}
}

func FuzzDecodeLine(f *testing.F) {
	for _, s := range []string{
		`{"type":"span_open","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","name":"GET","time":"2026-01-02T03:04:05Z"}`,
		`{"type":"update_name","trace_id":"t","span_id":"s","name":"b","old_name":"a"}`,
		`{"type":"span_end","trace_id":"t","span_id":"s","parent_span_id":"s","duration_ns":-5,"status":{"code":"error"},"unfinished":true,"events":[{"name":"exception","time":"x","attributes":{"exception.type":1}}]}`,
		`{"type":"log","trace_id":"t","span_id":"p","parent_span_id":"s","level":"error","message":"\u001b[2J"}`,
		`{"type":"skipped","skipped":3}`, `{"type":"keepalive"}`, `{"type":"diagnostic","dropped_events":2}`,
		`{"type":"outcome","trace_id":"t","span_id":"s","outcome":"exception"}`, `{}`, `[1]`, `{"type":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		it, err := decodeLine(line)
		if err != nil {
			return
		}
		s := newState()
		now := time.Now()
		s.apply(&it.ev, now)
		s.apply(&it.ev, now) // duplicates are fine too
		out := strings.Join(s.renderTraces(now, "", 0), "\n") + plainLine(&it.ev)
		if strings.Contains(plainLine(&it.ev), "\x1b") {
			t.Fatalf("escape code in a plain line: %q", plainLine(&it.ev))
		}
		_ = out
		s.prune(now.Add(time.Hour))
	})
}

func TestUnreachableServerIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close() // nothing listens there now
	var stderr syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	code := make(chan int, 1)
	go func() {
		code <- Run(ctx, []string{"--from", "http://" + addr, "--format", "plain"}, io.Discard, &stderr)
	}()
	waitFor(t, "two attempts", func() bool { return strings.Count(stderr.String(), "is stwbridge running") >= 2 })
	cancel()
	if c := <-code; c != 0 {
		t.Fatalf("exit %d after cancel; stderr %q", c, stderr.String())
	}
	if !strings.Contains(stderr.String(), "cannot reach "+addr) || !strings.Contains(stderr.String(), "retrying in") {
		t.Fatalf("stderr %q", stderr.String())
	}
}

// TestBearerToken: with --bearer-token-file, tail sends the token a protected
// stwbridge requires; without it, the refusal is reported.
func TestBearerToken(t *testing.T) {
	h := live.NewHub()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { h.Shutdown(context.Background()); srv.Close() })
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, stop := runTail(t, "--from", srv.URL, "--format", "json", "--bearer-token-file", file)
	waitFor(t, "tail to connect with the token", func() bool { return h.Stats().Watchers == 1 })
	h.Consume(t.Context(), []bridge.Event{bOpen(spanA, trace.SpanID{}, "GET", time.Now())})
	if l := next(t, lines); !strings.Contains(l, `"span_open"`) {
		t.Fatalf("first line %q, want the span_open", l)
	}
	if code, _ := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	var stderr syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if code := Run(ctx, []string{"--from", srv.URL, "--format", "json"}, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), "401") {
		t.Fatalf("without the token: exit %d, stderr %q; want a non-zero exit naming the 401", code, stderr.String())
	}
	if _, err := parseFlags([]string{"--bearer-token-file", filepath.Join(t.TempDir(), "missing")}, io.Discard); err == nil || !strings.Contains(err.Error(), "--bearer-token-file") {
		t.Fatalf("missing token file: %v", err)
	}
}
