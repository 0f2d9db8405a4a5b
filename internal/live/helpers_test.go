package live

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

var (
	resCheckout = resource.NewSchemaless(attribute.String("service.name", "checkout"))
	resBilling  = resource.NewSchemaless(attribute.String("service.name", "billing"))
)

func tid(b byte) trace.TraceID { return trace.TraceID{15: b, 0: 0xab} }
func sid(b byte) trace.SpanID  { return trace.SpanID{7: b, 0: 0xcd} }

func openEv(res *resource.Resource, t, s, parent byte, name string, start time.Time, attrs ...attribute.KeyValue) bridge.Event {
	b := &bridge.SpanOpen{Name: name, SpanKind: trace.SpanKindServer, Attributes: attrs}
	if parent != 0 {
		b.Parent = sid(parent)
	}
	return bridge.Event{TraceID: tid(t), SpanID: sid(s), StreamID: bridge.StreamID{0: 1, 15: t}, Time: start, Resource: res, Body: b}
}

func renameEv(res *resource.Resource, t, s byte, name string) bridge.Event {
	return bridge.Event{TraceID: tid(t), SpanID: sid(s), Time: time.Now(), Resource: res, Body: &bridge.UpdateName{Name: name}}
}

func endEv(res *resource.Resource, t, s byte, end time.Time, code codes.Code, unfinished bool) bridge.Event {
	return bridge.Event{TraceID: tid(t), SpanID: sid(s), Time: end, Resource: res,
		Body: &bridge.SpanEndData{Status: bridge.Status{Code: code, Description: "desc"}, Unfinished: unfinished}}
}

// watch connects a watcher and sends what it reads, keep-alives included, on the
// returned channel, closed when the stream ends.
func watch(t *testing.T, ctx context.Context, url string, accept string) (*http.Response, <-chan string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return resp, lines
}

// nextEvent returns the next NDJSON event that is not a keep-alive.
func nextEvent(t *testing.T, lines <-chan string) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended while waiting for an event")
			}
			var e Event
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("line %q is not JSON: %v", l, err)
			}
			if e.Type == TypeKeepAlive {
				continue
			}
			return e
		case <-deadline:
			t.Fatal("no event within 10s")
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newServer(t *testing.T, h *Hub) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// smallBufServer serves h with small socket send buffers, so that a watcher that does
// not read stalls the server's writes after some hundred KiB, not megabytes.
func smallBufServer(t *testing.T, h *Hub) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBufListener{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(64 << 10)
	}
	return c, err
}

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }

func nanFloat() float64 { return math.NaN() }
func infFloat() float64 { return math.Inf(1) }

func parseQuery(raw string) (url.Values, error) { return url.ParseQuery(raw) }

// The options that are fixed in production, small for tests.
func withBuffer(events int) Option            { return func(o *Options) { o.buffer = events } }
func withKeepAlive(d time.Duration) Option    { return func(o *Options) { o.keepAlive = d } }
func withWriteTimeout(d time.Duration) Option { return func(o *Options) { o.writeTimeout = d } }
