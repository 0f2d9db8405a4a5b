package forwarder

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/auth/authtest"
	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/faultload"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// metricValue returns the value of an unlabelled sample in a /metrics body ("" if absent).
func metricValue(body, name string) string {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func httpPost(t *testing.T, c *http.Client, url, contentType, token string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTLSAndMTLSOnBothListeners: with TLS and a client CA, both listeners serve only
// clients with a certificate from that CA.
func TestTLSAndMTLSOnBothListeners(t *testing.T) {
	pki := authtest.NewPKI(t, t.TempDir(), "bridge")
	sink := startSink(t)
	r := start(t, func(c *config.Config) {
		c.Exporter.Endpoint = "http://" + sink.Addr()
		tlsFiles := config.ServerTLS{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile}
		c.Receivers.OTLP.GRPC.TLS, c.Receivers.OTLP.HTTP.TLS = tlsFiles, tlsFiles
	})
	withCert := &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{pki.ClientCert}}
	noCert := &tls.Config{RootCAs: pki.CAPool}

	dial := func(cfg *tls.Config) *grpc.ClientConn {
		conn, err := grpc.NewClient(r.f.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	now := time.Now()
	st := stream(0x71)
	good := stwotlp.EventsRequest([]bridge.Event{ev(st, 0, 1, now, &bridge.SpanOpen{Name: "over-mtls"}), ev(st, 1, 1, now, &bridge.SpanEndData{})})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := collogspb.NewLogsServiceClient(dial(withCert)).Export(ctx, good); err != nil {
		t.Fatalf("gRPC with a client certificate: %v", err)
	}
	if _, err := collogspb.NewLogsServiceClient(dial(noCert)).Export(ctx, good); status.Code(err) != codes.Unavailable {
		t.Fatalf("gRPC without a client certificate: %v, want a failed handshake", err)
	}
	if _, err := collogspb.NewLogsServiceClient(r.conn).Export(ctx, good); err == nil {
		t.Fatal("plaintext gRPC to a TLS listener worked")
	}
	body := stwotlp.AppendEvents(nil, []bridge.Event{ev(st, 2, 2, now, &bridge.SpanOpen{Name: "over-https"}), ev(st, 3, 2, now, &bridge.SpanEndData{})})
	url := "https://" + r.f.HTTPAddr() + "/v1/logs"
	if code := httpPost(t, &http.Client{Transport: &http.Transport{TLSClientConfig: withCert}}, url, "application/x-protobuf", "", body); code != 200 {
		t.Fatalf("HTTPS with a client certificate: %d", code)
	}
	if code := httpPost(t, &http.Client{Transport: &http.Transport{TLSClientConfig: noCert}}, url, "application/x-protobuf", "", body); code != -1 {
		t.Fatalf("HTTPS without a client certificate: status %d, want a failed handshake", code)
	}
	if code := httpPost(t, http.DefaultClient, "http://"+r.f.HTTPAddr()+"/v1/logs", "application/x-protobuf", "", body); code == 200 {
		t.Fatal("plaintext HTTP to a TLS listener worked")
	}
	if !sink.WaitFor(10*time.Second, func(s *otlpsink.Sink) bool {
		return spanNamed(s, "over-mtls") != nil && spanNamed(s, "over-https") != nil
	}) {
		t.Fatal("spans sent over TLS not delivered")
	}
}

// TestFaultBadAndUnauthenticatedTraffic: with a bearer token required, requests
// without it, with a wrong one, malformed, oversized or of the wrong type are refused
// and counted, while the good traffic beside them loses nothing.
func TestFaultBadAndUnauthenticatedTraffic(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink := startSink(t)
	r := start(t, func(c *config.Config) {
		c.Exporter.Endpoint = "http://" + sink.Addr()
		c.Receivers.Auth.BearerTokenFile = tokenFile
		c.Receivers.OTLP.HTTP.MaxRequestBodySize = 64 << 10
		c.Persistence.DataDir = t.TempDir()
	})
	load := faultload.New(r.conn, 4, metadata.Pairs("authorization", "Bearer s3cret-token"))
	stop := make(chan struct{})
	wg := load.Run(10, 20*time.Millisecond, stop)

	var mu sync.Mutex
	counts := map[string]int{}
	count := func(what string, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		if ok {
			counts[what]++
		} else {
			counts[what+" (unexpected answer)"]++
		}
	}
	badDone := make(chan struct{})
	go func() {
		defer close(badDone)
		client := collogspb.NewLogsServiceClient(r.conn)
		base := "http://" + r.f.HTTPAddr()
		evil := stwotlp.EventsRequest([]bridge.Event{ev(stream(0x66), 0, 9, time.Now(), &bridge.SpanOpen{Name: "intruder"})})
		evilBody, _ := proto.Marshal(evil)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := client.Export(ctx, evil)
			count("grpc no token", status.Code(err) == codes.Unauthenticated)
			_, err = client.Export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer guess"), evil)
			count("grpc wrong token", status.Code(err) == codes.Unauthenticated)
			cancel()
			count("http no token", httpPost(t, http.DefaultClient, base+"/v1/logs", "application/x-protobuf", "", evilBody) == 401)
			count("http wrong token", httpPost(t, http.DefaultClient, base+"/v1/stw", "application/json", "guess", []byte("[]")) == 401)
			count("http malformed protobuf", httpPost(t, http.DefaultClient, base+"/v1/logs", "application/x-protobuf", "s3cret-token", []byte("\xff\xff garbage")) == 400)
			count("http malformed json", httpPost(t, http.DefaultClient, base+"/v1/stw", "application/json", "s3cret-token", []byte("{not json")) == 400)
			count("http oversize", httpPost(t, http.DefaultClient, base+"/v1/traces", "application/x-protobuf", "s3cret-token", make([]byte, 100<<10)) == 413)
			count("live no token", httpPost(t, http.DefaultClient, base+"/v1/live", "text/plain", "", nil) == 401)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	<-badDone
	faultload.Wait(t, "good traffic beside bad and unauthenticated requests", sink, 30*time.Second, load)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("FIGURES bad requests refused: %v", counts)
	unauth := 0
	for what, n := range counts {
		if strings.Contains(what, "unexpected") {
			t.Errorf("%s: %d", what, n)
		}
		if strings.Contains(what, "token") {
			unauth += n
		}
	}
	if counts["grpc no token"] == 0 {
		t.Fatal("no bad traffic was sent")
	}
	body := scrape(t, r.f.HTTPAddr())
	if got := metricValue(body, "stwbridge_auth_refused_total"); got != fmt.Sprint(unauth) {
		t.Errorf("stwbridge_auth_refused_total = %s, want %d", got, unauth)
	}
	if spanNamed(sink, "intruder") != nil {
		t.Fatal("an unauthenticated span was delivered")
	}
	// Health checks need no token.
	if _, err := healthpb.NewHealthClient(r.conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check: %v", err)
	}
}

// TestLimitsAreAppliedAndCounted: long attribute values are cut, spans past the
// per-stream open limit are refused, spans past the attribute and event limits lose
// the rest; all counted on /metrics.
func TestLimitsAreAppliedAndCounted(t *testing.T) {
	sink := startSink(t)
	r := start(t, func(c *config.Config) {
		c.Exporter.Endpoint = "http://" + sink.Addr()
		c.Limits.MaxAttributeValueLength = 8
		c.Limits.MaxOpenSpansPerStream = 2
		c.Assembler.MaxAttributesPerSpan = 2
		c.Assembler.MaxEventsPerSpan = 1
	})
	now := time.Now()
	st := stream(0x33)
	sendEvents(t, r.conn,
		ev(st, 0, 1, now, &bridge.SpanOpen{Name: "long", Attributes: []attribute.KeyValue{attribute.String("k", "0123456789abcdef")}}),
		ev(st, 1, 2, now, &bridge.SpanOpen{Name: "second"}),
		ev(st, 2, 3, now, &bridge.SpanOpen{Name: "third-refused"}),
		ev(st, 3, 3, now, &bridge.SpanEndData{}),
		ev(st, 4, 1, now, &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.Int("a", 1), attribute.Int("b", 2)},
			Events: []bridge.SpanEvent{{Name: "e1", Time: now}, {Name: "e2", Time: now}}}),
		ev(st, 5, 2, now, &bridge.SpanEndData{}),
	)
	if !sink.WaitFor(10*time.Second, func(s *otlpsink.Sink) bool { return spanNamed(s, "long") != nil && spanNamed(s, "second") != nil }) {
		t.Fatal("spans within the limits not delivered")
	}
	long := spanNamed(sink, "long")
	if len(long.Attributes) > 2 || len(long.Events) != 1 {
		t.Errorf("span over the attribute and event limits: %d attributes, %d events", len(long.Attributes), len(long.Events))
	}
	for _, kv := range long.Attributes {
		if kv.Key == "k" && kv.Value.GetStringValue() != "01234567" {
			t.Errorf("long value not cut: %q", kv.Value.GetStringValue())
		}
	}
	if spanNamed(sink, "third-refused") != nil {
		t.Error("a span past max_open_spans_per_stream was delivered")
	}
	body := scrape(t, r.f.HTTPAddr())
	for name, want := range map[string]string{
		"stwbridge_limits_truncated_values_total":       "1",
		"stwbridge_limits_refused_spans_total":          "1",
		"stwbridge_assembler_rejected_total":            "1", // the refused span's end
		"stwbridge_assembler_attributes_dropped_total":  "1",
		"stwbridge_assembler_span_events_dropped_total": "1",
	} {
		if got := metricValue(body, name); got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	if n := metricValue(body, "stwbridge_assembler_gaps_total"); n != "0" {
		t.Errorf("refused events left %s gaps in the stream", n)
	}
}

// TestGuardErrorsNameTheKey: bad TLS or token settings fail New with the key named.
func TestGuardErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for key, edit := range map[string]func(*config.Config){
		"receivers.otlp.grpc.tls": func(c *config.Config) { c.Receivers.OTLP.GRPC.TLS.CertFile = filepath.Join(dir, "none.pem") },
		"receivers.otlp.http.tls": func(c *config.Config) { c.Receivers.OTLP.HTTP.TLS.ClientCAFile = empty },
		"receivers.auth":          func(c *config.Config) { c.Receivers.Auth.BearerTokenFile = empty },
		"persistence.data_dir":    func(c *config.Config) { c.Persistence.DataDir = empty }, // a file, not a directory
		"memory_limiter":          func(c *config.Config) { c.MemoryLimiter.LimitPercentage = 50; c.MemoryLimiter.LimitMiB = 0 },
	} {
		cfg := config.Default()
		cfg.Receivers.OTLP.GRPC.Endpoint, cfg.Receivers.OTLP.HTTP.Endpoint = "127.0.0.1:0", "127.0.0.1:0"
		edit(&cfg)
		f, err := New(context.Background(), cfg, quietLogger(), io.Discard)
		if key == "memory_limiter" { // a valid percentage: it works
			if err != nil {
				t.Errorf("memory_limiter.limit_percentage 50: %v", err)
			} else {
				f.abort()
				f.grpcLis.Close()
				f.httpLis.Close()
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v does not name it", key, err)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestPersistentQueueGracefulRestart: a graceful stop keeps the spans still open in the
// queue instead of reporting them unfinished; the next start restores them, so their
// end completes them, and sends nothing twice.
func TestPersistentQueueGracefulRestart(t *testing.T) {
	sink := startSink(t)
	dir := t.TempDir()
	edit := func(c *config.Config) {
		c.Exporter.Endpoint = "http://" + sink.Addr()
		c.Persistence.DataDir = dir
	}
	r := start(t, edit)
	now := time.Now()
	st := stream(0x44)
	sendEvents(t, r.conn, ev(st, 0, 1, now, &bridge.SpanOpen{Name: "done"}), ev(st, 1, 1, now, &bridge.SpanEndData{}),
		ev(st, 2, 2, now, &bridge.SpanOpen{Name: "still-open", Attributes: []attribute.KeyValue{attribute.String("k", "v")}}))
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if spanNamed(sink, "done") == nil {
		t.Fatal("a span complete before the stop was not delivered")
	}
	if sp := spanNamed(sink, "still-open"); sp != nil {
		t.Fatalf("the open span was reported at a graceful stop with persistence: %v", sp)
	}
	if !strings.Contains(r.logs.String(), "open_spans_kept=1") {
		t.Errorf("shutdown log does not report the kept span:\n%s", r.logs.String())
	}

	// The receivers serve only once the queue is replayed, so the end comes after.
	r2 := start(t, edit)
	sendEvents(t, r2.conn, ev(st, 3, 2, now.Add(time.Second), &bridge.SpanEndData{}))
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	if st := r2.f.guards.queue.Stats(); st.Replayed == 0 {
		t.Fatalf("the restart replayed nothing: %+v", st)
	}
	var done, open []*tracepb.Span
	for _, sp := range sink.Spans() {
		switch sp.Name {
		case "done":
			done = append(done, sp)
		case "still-open":
			open = append(open, sp)
		}
	}
	if len(done) != 1 {
		t.Errorf("span done delivered %d times, want once", len(done))
	}
	if len(open) != 1 || boolAttr(open[0], stwotlp.AttrUnfinished) || len(open[0].Attributes) == 0 ||
		open[0].EndTimeUnixNano != uint64(now.Add(time.Second).UnixNano()) {
		t.Fatalf("the kept span after restart and end: %v, want it once, complete, with its attributes", open)
	}
	// Now nothing is open: that stop empties the queue.
	r3 := start(t, edit)
	if st := r3.f.guards.queue.Stats(); st.Replayed != 0 || st.WAL.LastIndex != st.WAL.Committed {
		t.Fatalf("after a stop with nothing open the queue still holds data: %+v", st)
	}
	r3.stop(t)
}
