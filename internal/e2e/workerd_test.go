// Package e2e holds end-to-end tests that run the real tools together: workerd with
// the example tail worker, stwbridge, a real OpenTelemetry Collector and an OTLP sink.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/internal/stwingest"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// workerdPath returns the workerd binary that scripts/tools.sh installs.
func workerdPath(t testing.TB) string {
	t.Helper()
	return testenv.Require(t, filepath.Join(testenv.ToolsDir(), "workerd", "node_modules",
		"@cloudflare", "workerd-linux-64", "bin", "workerd"), "workerd")
}

// procOutput collects a process's output from several goroutines.
type procOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *procOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *procOutput) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// workerdOptions change the example config before workerd starts.
type workerdOptions struct {
	// bindings are extra text bindings of the tail worker (name → value), e.g. its
	// retry bounds.
	bindings map[string]string
}

// startWorkerd runs workerd with examples/workerd (producer, echo service, tail
// worker), its tail worker posting to stwbridgeAddr, and returns the producer's base
// URL. workerd stops when the test ends; its output is logged if the test failed.
func startWorkerd(t *testing.T, stwbridgeAddr string, opt workerdOptions) string {
	t.Helper()
	bin := workerdPath(t)
	src := filepath.Join(testenv.RepoRoot(), "examples", "workerd")
	dir := t.TempDir()
	for _, name := range []string{"config.capnp", "producer.js", "echo.js", "tail.js"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "config.capnp" {
			data = configWithBindings(t, data, opt.bindings)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// workerd binds its socket to a free port and reports it on the control pipe, so
	// no port is guessed; the stwbridge service address is overridden the same way.
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer ctlR.Close()
	out := &procOutput{}
	cmd := exec.Command(bin, "serve", "config.capnp", "--experimental",
		"--socket-addr", "http=127.0.0.1:0",
		"--external-addr", "stwbridge="+stwbridgeAddr,
		"--control-fd", "3")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{ctlW}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting workerd: %v", err)
	}
	ctlW.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("workerd output:\n%s", out.String())
		}
	})

	port := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(ctlR)
		for sc.Scan() {
			var msg struct {
				Event  string `json:"event"`
				Socket string `json:"socket"`
				Port   int    `json:"port"`
			}
			if json.Unmarshal(sc.Bytes(), &msg) == nil && msg.Event == "listen" && msg.Socket == "http" {
				port <- msg.Port
				return
			}
		}
	}()
	select {
	case p := <-port:
		return fmt.Sprintf("http://127.0.0.1:%d", p)
	case <-done:
		t.Fatalf("workerd exited before listening:\n%s", out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("workerd did not listen within 60s:\n%s", out.String())
	}
	return ""
}

// configWithBindings adds text bindings to the tail worker of the example config.
func configWithBindings(t *testing.T, config []byte, bindings map[string]string) []byte {
	t.Helper()
	if len(bindings) == 0 {
		return config
	}
	const anchor = `(name = "STWBRIDGE", service = "stwbridge"),`
	if !bytes.Contains(config, []byte(anchor)) {
		t.Fatalf("examples/workerd/config.capnp no longer has %s", anchor)
	}
	var extra strings.Builder
	extra.WriteString(anchor)
	for k, v := range bindings {
		fmt.Fprintf(&extra, "\n    (name = %q, text = %q),", k, v)
	}
	return bytes.Replace(config, []byte(anchor), []byte(extra.String()), 1)
}

// getStatus requests base+path from the producer and checks the status code.
func getStatus(t *testing.T, base, path string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d", path, res.StatusCode, want)
	}
}

// pollUntil polls cond until it holds or the deadline passes.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline, not a fixed wait
	}
}

// eventRecorder is a stwingest.Publisher that keeps the events it gets.
type eventRecorder struct {
	mu     sync.Mutex
	events []bridge.Event
}

func (c *eventRecorder) Publish(e bridge.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
	return true
}

// invocations groups the events by invocation, keeping arrival order.
func (c *eventRecorder) invocations() map[bridge.StreamID][]bridge.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[bridge.StreamID][]bridge.Event{}
	for _, e := range c.events {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	return out
}

// finished returns the invocations whose outcome arrived, by the path of their URL.
func (c *eventRecorder) finished() map[string][]bridge.Event {
	out := map[string][]bridge.Event{}
	for _, evs := range c.invocations() {
		var path string
		done := false
		for _, e := range evs {
			switch b := e.Body.(type) {
			case *bridge.Onset:
				if i := strings.Index(b.Info.URL, "://"); i >= 0 {
					rest := b.Info.URL[i+3:]
					if j := strings.IndexByte(rest, '/'); j >= 0 {
						path = rest[j:]
					}
				}
			case *bridge.Outcome:
				done = true
			}
		}
		if done && path != "" {
			out[path] = evs
		}
	}
	return out
}

// The example tail worker delivers every event of real workerd invocations to the
// ingest handler, complete and in order, and retries a refused POST.
func TestWorkerdTailWorker(t *testing.T) {
	pub := &eventRecorder{}
	h := stwingest.NewHandler(pub)
	var mu sync.Mutex
	posts, refused := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		refuse := posts <= 2 // the first two POSTs fail: the tail worker must retry them
		if refuse {
			refused++
		}
		mu.Unlock()
		if r.URL.Path != "/v1/stw" {
			http.NotFound(w, r)
			return
		}
		if refuse {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	base := startWorkerd(t, strings.TrimPrefix(srv.URL, "http://"), workerdOptions{bindings: map[string]string{
		"STW_BACKOFF_MS": "10",
		"STWBRIDGE_GZIP": "1",
	}})
	getStatus(t, base, "/a", http.StatusOK)
	getStatus(t, base, "/throw", http.StatusInternalServerError)
	pollUntil(t, 30*time.Second, "both invocations to reach their outcome", func() bool {
		f := pub.finished()
		return f["/a"] != nil && f["/throw"] != nil
	})
	mu.Lock()
	if refused != 2 {
		t.Errorf("%d POSTs refused, want 2", refused)
	}
	mu.Unlock()
	if s := h.Stats(); s.Rejected != 0 || s.Unknown != 0 || s.Dropped != 0 || s.Unsampled != 0 {
		t.Errorf("handler stats %+v: want nothing rejected", s)
	}

	f := pub.finished()
	for path, evs := range f {
		// Sequence numbers 0..n-1 without gap or duplicate, onset first, outcome last.
		for i, e := range evs {
			if e.Sequence != uint64(i) {
				t.Fatalf("%s: event %d has sequence %d", path, i, e.Sequence)
			}
		}
		if evs[0].Kind() != bridge.KindOnset || evs[len(evs)-1].Kind() != bridge.KindOutcome {
			t.Errorf("%s: first %s, last %s; want onset, outcome", path, evs[0].Kind(), evs[len(evs)-1].Kind())
		}
	}
	checkInvocation(t, "/a", f["/a"], "ok")
	checkInvocation(t, "/throw", f["/throw"], "exception")
}

// checkInvocation checks the span tree and bodies of one invocation of the producer:
// outer > inner > fetch and background > fetch, outer and background under the root.
func checkInvocation(t *testing.T, path string, evs []bridge.Event, outcome string) {
	t.Helper()
	root := evs[0].SpanID
	onset := evs[0].Body.(*bridge.Onset)
	if onset.Info.Type != "fetch" || onset.Info.Method != "GET" || onset.ExecutionModel != "stateless" {
		t.Errorf("%s: onset %+v", path, onset)
	}
	names := map[trace.SpanID]string{root: "(root)"}
	var opened, renamed, statuses []string
	var sawReturn, sawException, sawLog bool
	for _, e := range evs {
		switch b := e.Body.(type) {
		case *bridge.SpanOpen:
			names[e.SpanID] = b.Name
			opened = append(opened, b.Name+" < "+names[b.Parent])
		case *bridge.UpdateName:
			renamed = append(renamed, names[e.SpanID]+" → "+b.Name)
		case *bridge.StatusUpdate:
			statuses = append(statuses, names[e.SpanID]+" "+b.Status.Code.String())
		case *bridge.Return:
			sawReturn = true
			if b.StatusCode != 200 {
				t.Errorf("%s: return status %d, want 200", path, b.StatusCode)
			}
		case *bridge.Exception:
			sawException = true
			if b.Name != "Error" || b.Message != "boom" {
				t.Errorf("%s: exception %+v, want Error: boom", path, b)
			}
		case *bridge.Log:
			sawLog = true
			if !strings.Contains(b.Message, "hello from main") {
				t.Errorf("%s: log %+v", path, b)
			}
		case *bridge.Outcome:
			if b.Outcome != outcome {
				t.Errorf("%s: outcome %q, want %q", path, b.Outcome, outcome)
			}
		}
	}
	slices.Sort(opened)
	want := []string{"background < (root)", "fetch < background", "fetch < inner", "inner < outer (pending)", "outer (pending) < (root)"}
	if !slices.Equal(opened, want) {
		t.Errorf("%s: spans opened %q, want %q", path, opened, want)
	}
	// span.updateName and span.setStatus of the producer, as workerd's spanUpdate.
	if want := []string{"outer (pending) → outer"}; !slices.Equal(renamed, want) {
		t.Errorf("%s: renames %q, want %q", path, renamed, want)
	}
	if want := []string{"inner Ok"}; !slices.Equal(statuses, want) {
		t.Errorf("%s: status updates %q, want %q", path, statuses, want)
	}
	if !sawLog {
		t.Errorf("%s: no log event", path)
	}
	if outcome == "ok" && (!sawReturn || sawException) {
		t.Errorf("%s: return %v, exception %v; want a return and no exception", path, sawReturn, sawException)
	}
	if outcome == "exception" && !sawException {
		t.Errorf("%s: no exception event", path)
	}
}

// buildStwbridge builds ./cmd/stwbridge into a temporary folder.
func buildStwbridge(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stwbridge")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/stwbridge")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/stwbridge: %v\n%s", err, out)
	}
	return bin
}

// startStwbridge runs the stwbridge binary with args until the test ends, and waits
// until its HTTP listener answers.
func startStwbridge(t *testing.T, bin, httpAddr string, args ...string) {
	t.Helper()
	out := &procOutput{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting stwbridge: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("stwbridge output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", httpAddr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("stwbridge exited at start:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stwbridge did not listen on %s within 30s:\n%s", httpAddr, out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// TestWorkerdEndToEnd runs the whole path with real parts: workerd (producer and the
// example tail worker) → stwbridge (POST /v1/stw, assembler) → a real OpenTelemetry
// Collector → an OTLP sink; and checks the traces that arrive.
func TestWorkerdEndToEnd(t *testing.T) {
	workerdPath(t) // fail or skip before building anything
	sink, err := otlpsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Stop)
	col := testenv.StartCollector(t, testenv.CollectorConfig{ForwardTo: sink.Addr()}).Endpoint()

	bin := buildStwbridge(t)
	httpAddr := testenv.FreeAddr(t)
	startStwbridge(t, bin, httpAddr,
		"--listen", testenv.FreeAddr(t),
		"--http-listen", httpAddr,
		"--forward", "http://"+col,
		"--orphan-after", orphanAfter.String(),
		// Local workerd sends no script name: the service is named here.
		"--workerd-service-name", "producer")

	checkIngestErrors(t, httpAddr)

	base := startWorkerd(t, httpAddr, workerdOptions{})
	getStatus(t, base, "/a", http.StatusOK)
	getStatus(t, base, "/throw", http.StatusInternalServerError)

	// An invocation that hangs: its spans reach stwbridge as they open, but neither
	// span nor invocation ends, so stwbridge reports both as unfinished.
	hangCtx, stopHang := context.WithCancel(context.Background())
	t.Cleanup(stopHang)
	hangStart := time.Now()
	go func() {
		req, _ := http.NewRequestWithContext(hangCtx, http.MethodGet, base+"/hang?ms=120000", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()

	// Each request is one trace of six spans: the invocation's root span, outer,
	// inner, fetch, background and background's fetch.
	var traces map[string][]*tracepb.Span
	ok := sink.WaitFor(60*time.Second, func(s *otlpsink.Sink) bool {
		traces = spansByTrace(s.Spans())
		return len(completeTraces(traces)) >= 2
	})
	if !ok {
		t.Fatalf("the sink did not getStatus two complete traces within 60s; got %s", describeTraces(traces))
	}
	done := completeTraces(traces)
	var a, throw []*tracepb.Span
	for _, spans := range done {
		switch root := rootSpan(spans); {
		case root == nil:
		case strings.HasSuffix(spanStr(root, "url.full"), "/a"), spanStr(root, "url.path") == "/a":
			a = spans
		case strings.HasSuffix(spanStr(root, "url.full"), "/throw"), spanStr(root, "url.path") == "/throw":
			throw = spans
		}
	}
	if a == nil || throw == nil {
		t.Fatalf("no trace for GET /a or GET /throw (by url.full of the root span): %s", describeTraces(traces))
	}
	checkTrace(t, "/a", a, 200)
	checkTrace(t, "/throw", throw, 0)
	checkService(t, sink, "producer")

	var hang []*tracepb.Span
	ok = sink.WaitFor(orphanAfter+60*time.Second, func(s *otlpsink.Sink) bool {
		for _, spans := range spansByTrace(s.Spans()) {
			if root := rootSpan(spans); root != nil && spanStr(root, "url.path") == "/hang" && len(spans) == 2 {
				hang = spans
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("the hanging invocation did not reach the sink as two unfinished spans; got %s", describeTraces(spansByTrace(sink.Spans())))
	}
	waited := time.Since(hangStart)
	if waited < orphanAfter {
		t.Errorf("unfinished spans came after %v, before --orphan-after %v", waited, orphanAfter)
	}
	t.Logf("the hanging invocation was reported unfinished after %v (--orphan-after %v)", waited.Round(time.Millisecond), orphanAfter)
	root := rootSpan(hang)
	for _, s := range hang {
		if v := spanAttr(s, "stw.unfinished"); v == nil || !v.GetBoolValue() {
			t.Errorf("/hang: span %q not marked stw.unfinished=true", s.Name)
		}
		if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("/hang: unfinished span %q has status %v, want Error", s.Name, s.Status)
		}
		if s != root && (s.Name != "hang" || !bytes.Equal(s.ParentSpanId, root.SpanId)) {
			t.Errorf("/hang: span %q under %x, want \"hang\" under the root", s.Name, s.ParentSpanId)
		}
	}
}

// checkIngestErrors posts bad input to stwbridge's /v1/stw and checks the answers and
// its counters on /metrics: a malformed body is refused with 400 and a message, an
// event of a type from the future is accepted and counted as unknown.
func checkIngestErrors(t *testing.T, httpAddr string) {
	t.Helper()
	post := func(body string) (int, stwingest.Response) {
		res, err := http.Post("http://"+httpAddr+"/v1/stw", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST /v1/stw: %v", err)
		}
		defer res.Body.Close()
		var r stwingest.Response
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			t.Fatalf("POST /v1/stw answered %d without a JSON summary: %v", res.StatusCode, err)
		}
		return res.StatusCode, r
	}
	if code, r := post("{not json}\n"); code != http.StatusBadRequest || r.Rejected != 1 || r.Message == "" || len(r.Errors) != 1 {
		t.Errorf("malformed body: %d %+v, want 400 with a message and the error", code, r)
	}
	future := `{"spanContext":{"traceId":"983a4641c7fed86130cb5bf175732ce5","spanId":"a3ce54d35191e6ae"},` +
		`"invocationId":"36ea23f65aa0585be81336c1f2b06c87","timestamp":"2026-11-23T18:31:08.885Z","sequence":1,` +
		`"event":{"type":"spanUpdate","info":{"type":"somethingNew"}}}`
	if code, r := post(future); code != http.StatusOK || r.Unknown != 1 || r.Rejected != 0 {
		t.Errorf("unknown event type: %d %+v, want 200 with 1 unknown", code, r)
	}
	res, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"stwbridge_stwingest_rejected_total 1", "stwbridge_stwingest_unknown_total 1"} {
		if !bytes.Contains(metrics, []byte(want+"\n")) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// checkService checks that every span reached the Collector's downstream under a
// Resource naming the service and the platform.
func checkService(t *testing.T, sink *otlpsink.Sink, service string) {
	t.Helper()
	for _, req := range sink.TraceRequests() {
		for _, rs := range req.ResourceSpans {
			got := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				got[kv.Key] = kv.Value.GetStringValue()
			}
			if got["service.name"] != service || got["cloud.provider"] != bridge.CloudProvider || got["cloud.platform"] != bridge.CloudPlatform {
				t.Errorf("spans under resource %v, want service.name %s on %s", got, service, bridge.CloudPlatform)
			}
		}
	}
}

// orphanAfter is stwbridge's --orphan-after in the end-to-end test: long enough that
// the finished requests complete well within it.
const orphanAfter = 5 * time.Second

// spansByTrace groups spans by trace id.
func spansByTrace(spans []*tracepb.Span) map[string][]*tracepb.Span {
	out := map[string][]*tracepb.Span{}
	for _, s := range spans {
		k := hex.EncodeToString(s.TraceId)
		out[k] = append(out[k], s)
	}
	return out
}

// completeTraces returns the traces with a root span and the five spans under it.
func completeTraces(traces map[string][]*tracepb.Span) map[string][]*tracepb.Span {
	out := map[string][]*tracepb.Span{}
	for k, spans := range traces {
		if len(spans) >= 6 && rootSpan(spans) != nil {
			out[k] = spans
		}
	}
	return out
}

// rootSpan returns the span of the trace whose parent is not in it.
func rootSpan(spans []*tracepb.Span) *tracepb.Span {
	ids := map[string]bool{}
	for _, s := range spans {
		ids[string(s.SpanId)] = true
	}
	for _, s := range spans {
		if !ids[string(s.ParentSpanId)] {
			return s
		}
	}
	return nil
}

// describeTraces prints traces for a failure message.
func describeTraces(traces map[string][]*tracepb.Span) string {
	var b strings.Builder
	for k, spans := range traces {
		fmt.Fprintf(&b, "\ntrace %s:", k)
		for _, s := range spans {
			fmt.Fprintf(&b, "\n  %q span %x parent %x status %v attrs %v", s.Name, s.SpanId, s.ParentSpanId, s.Status, s.Attributes)
		}
	}
	return b.String()
}

// spanAttr returns the value of s's attribute key, nil when absent.
func spanAttr(s *tracepb.Span, key string) *commonpb.AnyValue {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

// spanStr returns s's string attribute key, "" when absent.
func spanStr(s *tracepb.Span, key string) string {
	if v := spanAttr(s, key); v != nil {
		return v.GetStringValue()
	}
	return ""
}

// checkTrace checks one request's trace: parents, names, attributes of each type,
// statuses and timing. status is the response status the root span must carry (0:
// the invocation threw, so none, and the root span is in error with an exception).
func checkTrace(t *testing.T, path string, spans []*tracepb.Span, status int64) {
	t.Helper()
	root := rootSpan(spans)
	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		byID[string(s.SpanId)] = s
	}
	parentName := func(s *tracepb.Span) string {
		if p := byID[string(s.ParentSpanId)]; p != nil {
			if p == root {
				return "(root)"
			}
			return p.Name
		}
		return "(none)"
	}
	named := map[string][]*tracepb.Span{}
	var tree []string
	for _, s := range spans {
		if s == root {
			continue
		}
		named[s.Name] = append(named[s.Name], s)
		tree = append(tree, s.Name+" < "+parentName(s))
	}
	slices.Sort(tree)
	want := []string{"background < (root)", "fetch < background", "fetch < inner", "inner < outer", "outer < (root)"}
	if !slices.Equal(tree, want) {
		t.Fatalf("%s: span tree %q, want %q\n%s", path, tree, want, describeTraces(map[string][]*tracepb.Span{"": spans}))
	}

	// The root span: from the onset's fetch info, following the HTTP semantic conventions.
	if root.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("%s: root span kind %v, want SERVER", path, root.Kind)
	}
	if root.Name != "GET" {
		t.Errorf("%s: root span name %q, want GET (the method: workerd knows no route)", path, root.Name)
	}
	if got := spanStr(root, "url.path"); got != path {
		t.Errorf("%s: root url.path %q", path, got)
	}
	wantOutcome := "ok"
	if status == 0 {
		wantOutcome = "exception"
	}
	if got := spanStr(root, "cloudflare.outcome"); got != wantOutcome {
		t.Errorf("%s: root cloudflare.outcome %q, want %q", path, got, wantOutcome)
	}
	// The console.log line is a "log" span event of the root span.
	if msg := spanEventAttr(root, "log", "log.message"); !strings.Contains(msg, "hello from main") {
		t.Errorf("%s: root span has no log event with the console.log line; events %v", path, root.Events)
	}
	if got := spanStr(root, "http.request.method"); got != "GET" {
		t.Errorf("%s: root http.request.method %q, want GET", path, got)
	}
	if got := spanAttr(root, "http.response.status_code"); status != 0 && (got == nil || got.GetIntValue() != status) {
		t.Errorf("%s: root http.response.status_code %v, want %d", path, got, status)
	}

	// Attributes of each type, as the producer set them on "outer" and "inner".
	outer, inner := named["outer"][0], named["inner"][0]
	for key, want := range map[string]*commonpb.AnyValue{
		"app.user":  {Value: &commonpb.AnyValue_StringValue{StringValue: "alice"}},
		"app.count": {Value: &commonpb.AnyValue_IntValue{IntValue: 3}},
		"app.ok":    {Value: &commonpb.AnyValue_BoolValue{BoolValue: true}},
		"app.ratio": {Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.5}},
	} {
		if got := spanAttr(outer, key); !proto.Equal(got, want) {
			t.Errorf("%s: outer %s = %v, want %v", path, key, got, want)
		}
	}
	if got := spanStr(inner, "inner.k"); got != "v" {
		t.Errorf("%s: inner inner.k = %q, want v", path, got)
	}
	bg := named["background"][0]
	if got := spanAttr(bg, "bg.step"); got == nil || got.GetIntValue() != 1 {
		t.Errorf("%s: background bg.step = %v, want 1", path, got)
	}
	for _, f := range named["fetch"] {
		if got := spanStr(f, "http.request.method"); got != "GET" {
			t.Errorf("%s: fetch span http.request.method %q, want GET", path, got)
		}
	}

	// inner.setStatus({code: "ok"}) reached the assembled span; "outer" carries the
	// name it was renamed to (the tree above), not "outer (pending)".
	if inner.Status.GetCode() != tracepb.Status_STATUS_CODE_OK {
		t.Errorf("%s: inner status %v, want Ok (span.setStatus)", path, inner.Status)
	}
	// Statuses: nothing unfinished; the thrown exception marks the root span.
	for _, s := range spans {
		if v := spanAttr(s, "stw.unfinished"); v != nil && v.GetBoolValue() {
			t.Errorf("%s: span %q reported unfinished", path, s.Name)
		}
		if s != root && s.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("%s: span %q has status Error", path, s.Name)
		}
	}
	if status != 0 {
		if root.Status.GetCode() != tracepb.Status_STATUS_CODE_OK {
			t.Errorf("%s: root status %v, want Ok", path, root.Status)
		}
	} else {
		if root.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("%s: root status %v, want Error", path, root.Status)
		}
		if !hasExceptionEvent(root, "Error", "boom") {
			t.Errorf("%s: root span has no exception event Error: boom; events %v", path, root.Events)
		}
	}

	// Timing: every span within its parent; the waitUntil span ends after the
	// response (outer ended before it) and within the invocation.
	for _, s := range spans {
		if s.StartTimeUnixNano == 0 || s.EndTimeUnixNano < s.StartTimeUnixNano {
			t.Errorf("%s: span %q runs from %d to %d", path, s.Name, s.StartTimeUnixNano, s.EndTimeUnixNano)
		}
		if p := byID[string(s.ParentSpanId)]; p != nil {
			if s.StartTimeUnixNano < p.StartTimeUnixNano || s.EndTimeUnixNano > p.EndTimeUnixNano {
				t.Errorf("%s: span %q [%d, %d] not within its parent %q [%d, %d]", path, s.Name,
					s.StartTimeUnixNano, s.EndTimeUnixNano, p.Name, p.StartTimeUnixNano, p.EndTimeUnixNano)
			}
		}
	}
	if bg.EndTimeUnixNano <= outer.EndTimeUnixNano {
		t.Errorf("%s: background ended at %d, not after outer (%d): the waitUntil span should outlive the response",
			path, bg.EndTimeUnixNano, outer.EndTimeUnixNano)
	}
}

// spanEventAttr returns the string attribute key of s's first event of that name.
func spanEventAttr(s *tracepb.Span, name, key string) string {
	for _, ev := range s.Events {
		if ev.Name != name {
			continue
		}
		for _, kv := range ev.Attributes {
			if kv.Key == key {
				return kv.Value.GetStringValue()
			}
		}
	}
	return ""
}

// hasExceptionEvent reports whether s has an OTel exception event of that type and message.
func hasExceptionEvent(s *tracepb.Span, typ, msg string) bool {
	for _, ev := range s.Events {
		if ev.Name != "exception" {
			continue
		}
		var gotType, gotMsg string
		for _, kv := range ev.Attributes {
			switch kv.Key {
			case "exception.type":
				gotType = kv.Value.GetStringValue()
			case "exception.message":
				gotMsg = kv.Value.GetStringValue()
			}
		}
		if gotType == typ && gotMsg == msg {
			return true
		}
	}
	return false
}

// TestTailWorkerJS runs the unit tests of examples/workerd/tail.js (batching, retry,
// give-up, gzip, BigInt encoding) under Node's test runner.
func TestTailWorkerJS(t *testing.T) {
	node := testenv.LookPath(t, "node")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "tail_test.mjs")
	cmd.Dir = filepath.Join(testenv.RepoRoot(), "examples", "workerd")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test examples/workerd/tail_test.mjs: %v\n%s", err, out)
	}
}
