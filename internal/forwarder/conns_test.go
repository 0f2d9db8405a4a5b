package forwarder

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/stwbridge/stwbridge/internal/config"
)

// dialHTTP opens a raw connection to the HTTP listener and sends raw on it.
func dialHTTP(t *testing.T, r *running, raw string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", r.f.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if raw != "" {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
	}
	return c, bufio.NewReader(c)
}

// closedByServer reads from c until it ends and reports whether the server closed it
// (EOF or reset) within the deadline, rather than the deadline passing.
func closedByServer(c net.Conn, rd *bufio.Reader, within time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, rd)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// Idle keep-alive connections and slow request bodies are closed after
// receivers.otlp.http.idle_timeout and read_timeout; a /v1/live stream outlives both.
func TestHTTPIdleAndSlowConnectionsClosed(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.Receivers.OTLP.HTTP.IdleTimeout = config.Duration(300 * time.Millisecond)
		c.Receivers.OTLP.HTTP.ReadTimeout = config.Duration(300 * time.Millisecond)
	})
	idle, rd := dialHTTP(t, r, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(rd, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	slow, srd := dialHTTP(t, r, "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0123456789")
	live, lrd := dialHTTP(t, r, "GET /v1/live?keepalive=100ms HTTP/1.1\r\nHost: x\r\n\r\n")

	if !closedByServer(idle, rd, 15*time.Second) {
		t.Error("an idle keep-alive connection was still open after 15s (idle_timeout 300ms)")
	}
	if !closedByServer(slow, srd, 15*time.Second) {
		t.Error("a request whose body never came was still open after 15s (read_timeout 300ms)")
	}
	// The live stream goes on with keep-alives past the read and idle timeouts.
	live.SetReadDeadline(time.Now().Add(15 * time.Second))
	if resp, err := http.ReadResponse(lrd, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/v1/live: %v %v", resp, err)
	}
	for start := time.Now(); time.Since(start) < time.Second; {
		if _, err := lrd.ReadString('\n'); err != nil {
			t.Fatalf("/v1/live stream ended after %v: %v", time.Since(start), err)
		}
	}
}

// Past receivers.otlp.http.max_connections, a connection waits until one closes.
func TestHTTPMaxConnections(t *testing.T) {
	r := start(t, func(c *config.Config) { c.Receivers.OTLP.HTTP.MaxConnections = 2 })
	a, _ := dialHTTP(t, r, "")
	dialHTTP(t, r, "")
	url := "http://" + r.f.HTTPAddr() + "/healthz"
	short := &http.Client{Timeout: 500 * time.Millisecond}
	if resp, err := short.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("a third connection was served while two were open (max_connections 2)")
	}
	a.Close()
	long := &http.Client{Timeout: 15 * time.Second}
	resp, err := long.Get(url)
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	resp.Body.Close()
}

// A gRPC connection without calls is closed after
// receivers.otlp.grpc.keepalive.server_parameters.max_connection_idle.
func TestGRPCMaxConnectionIdle(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.Receivers.OTLP.GRPC.Keepalive.ServerParameters.MaxConnectionIdle = config.Duration(300 * time.Millisecond)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	for st := r.conn.GetState(); st != connectivity.Idle; st = r.conn.GetState() {
		if !r.conn.WaitForStateChange(ctx, st) {
			t.Fatalf("the connection stayed %v for 10s (max_connection_idle 300ms)", st)
		}
	}
}

// The live hub's watcher cap comes from receivers.otlp.http.max_live_watchers.
func TestMaxLiveWatchers(t *testing.T) {
	r := start(t, func(c *config.Config) { c.Receivers.OTLP.HTTP.MaxLiveWatchers = 1 })
	dialHTTP(t, r, "GET /v1/live HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(15 * time.Second)
	for r.f.hub.Stats().Watchers != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first watcher never connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + r.f.HTTPAddr() + "/v1/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second watcher: %d, want 503", resp.StatusCode)
	}
	if !strings.Contains(scrape(t, r.f.HTTPAddr()), "stwbridge_live_refused_total 1") {
		t.Error("the refusal is not counted in stwbridge_live_refused_total")
	}
}
