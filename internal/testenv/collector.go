package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CollectorConfig says how to run the test Collector. Its pipelines are
// otlp receiver → batch processor → exporters, for logs and traces.
type CollectorConfig struct {
	// ForwardTo is host:port of an OTLP/gRPC server (an otlpsink, usually) that the
	// Collector's OTLP exporter sends to, in plaintext with gzip (its default). Empty:
	// only the debug exporter, which prints to the Collector's output.
	ForwardTo string
	// MaxRecvMsgSizeMiB bounds the size of a request the receiver accepts (the
	// receiver's max_recv_msg_size_mib); 0 keeps the Collector's default.
	MaxRecvMsgSizeMiB int
	// BatchTimeout is the batch processor's timeout (default 100ms).
	BatchTimeout time.Duration
	// ExporterRetry turns on the OTLP exporter's retry_on_failure; off by default, so a
	// broken sink shows at once in tests.
	ExporterRetry bool
	// Debug adds the debug exporter, at detailed verbosity, to both pipelines.
	Debug bool
	// BearerToken, when set, makes the receiver refuse requests without the header
	// "authorization: Bearer <token>" (the bearertokenauth extension), with
	// Unauthenticated.
	BearerToken string
}

// Collector is a real OpenTelemetry Collector (the binary `make tools` builds from
// internal/tools/otelcol) run by a test. Its receiver listens on a free loopback port
// that stays the same across Stop and Start, so an exporter pointed at Endpoint finds
// it again after a restart. It is stopped when the test ends; its output goes to the
// test log when the test failed.
type Collector struct {
	t        testing.TB
	bin      string
	config   string // path of the YAML file
	endpoint string // the OTLP/gRPC receiver's host:port

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exited
	out  *SyncBuffer
}

// NewCollector writes the Collector's configuration into a temporary folder and
// picks its ports, without starting it (see Start). It fails or skips the test, as
// Require does, when the binary is missing.
func NewCollector(t testing.TB, cfg CollectorConfig) *Collector {
	t.Helper()
	bin := OtelcolPath(t)
	dir := t.TempDir()
	c := &Collector{t: t, bin: bin, config: filepath.Join(dir, "otelcol.yaml"), out: &SyncBuffer{}}
	c.endpoint = FreeAddr(t)
	if err := os.WriteFile(c.config, []byte(collectorYAML(cfg, c.endpoint)), 0o644); err != nil {
		t.Fatalf("testenv: writing the Collector's configuration: %v", err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			cfgText, _ := os.ReadFile(c.config)
			t.Logf("Collector configuration:\n%s\nCollector output:\n%s", cfgText, c.out.String())
		}
	})
	return c
}

// StartCollector is NewCollector followed by Start.
func StartCollector(t testing.TB, cfg CollectorConfig) *Collector {
	t.Helper()
	c := NewCollector(t, cfg)
	c.Start()
	return c
}

// Endpoint is host:port of the Collector's OTLP/gRPC receiver (plaintext).
func (c *Collector) Endpoint() string { return c.endpoint }

// Output returns what the Collector printed so far.
func (c *Collector) Output() string { return c.out.String() }

// Start runs the Collector and waits until its receiver accepts connections; it
// fails the test if it exits or does not listen within 60 s.
func (c *Collector) Start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		c.t.Fatalf("testenv: the Collector is already running")
	}
	cmd := exec.Command(c.bin, "--config", "file:"+c.config)
	fmt.Fprintf(c.out, "==== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = c.out, c.out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("testenv: starting the Collector %s: %v", c.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.cmd, c.done = cmd, done

	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.endpoint, time.Second)
		if err == nil {
			_ = conn.Close()
			return
		}
		select {
		case <-done:
			c.cmd = nil
			c.t.Fatalf("testenv: the Collector exited at start (%v); output:\n%s", cmd.ProcessState, c.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("testenv: the Collector does not listen on %s after 60 s; output:\n%s", c.endpoint, c.out.String())
		}
	}
}

// Stop stops the Collector (SIGTERM, then SIGKILL after 10 s) and waits for it to
// exit. It does nothing when it is not running.
func (c *Collector) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	fmt.Fprintf(c.out, "==== stopped %s (%v)\n", time.Now().Format(time.RFC3339Nano), c.cmd.ProcessState)
	c.cmd = nil
}

// Restart stops the Collector and starts it again on the same ports.
func (c *Collector) Restart() {
	c.t.Helper()
	c.Stop()
	c.Start()
}

// FreeAddr returns 127.0.0.1:port with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// collectorYAML writes the Collector configuration for cfg.
func collectorYAML(cfg CollectorConfig, endpoint string) string {
	var b bytes.Buffer
	if cfg.BearerToken != "" {
		fmt.Fprintf(&b, "extensions:\n  bearertokenauth:\n    token: %q\n", cfg.BearerToken)
	}
	b.WriteString("receivers:\n  otlp:\n    protocols:\n      grpc:\n")
	fmt.Fprintf(&b, "        endpoint: %q\n", endpoint)
	if cfg.BearerToken != "" {
		b.WriteString("        auth:\n          authenticator: bearertokenauth\n")
	}
	if cfg.MaxRecvMsgSizeMiB > 0 {
		fmt.Fprintf(&b, "        max_recv_msg_size_mib: %d\n", cfg.MaxRecvMsgSizeMiB)
	}
	timeout := cfg.BatchTimeout
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	fmt.Fprintf(&b, "processors:\n  batch:\n    timeout: %s\n", timeout)
	b.WriteString("exporters:\n")
	var exporters []string
	if cfg.ForwardTo != "" {
		exporters = append(exporters, "otlp_grpc")
		fmt.Fprintf(&b, "  otlp_grpc:\n    endpoint: %q\n    tls:\n      insecure: true\n", cfg.ForwardTo)
		// One consumer keeps the order of batches, so per-stream order survives.
		b.WriteString("    sending_queue:\n      num_consumers: 1\n")
		fmt.Fprintf(&b, "    retry_on_failure:\n      enabled: %v\n", cfg.ExporterRetry)
	}
	if cfg.Debug || cfg.ForwardTo == "" {
		exporters = append(exporters, "debug")
		b.WriteString("  debug:\n    verbosity: detailed\n")
	}
	list := "[" + strings.Join(exporters, ", ") + "]"
	b.WriteString("service:\n")
	if cfg.BearerToken != "" {
		b.WriteString("  extensions: [bearertokenauth]\n")
	}
	b.WriteString("  telemetry:\n    metrics:\n      level: none\n    logs:\n      level: info\n")
	b.WriteString("  pipelines:\n")
	for _, p := range []string{"logs", "traces"} {
		fmt.Fprintf(&b, "    %s:\n      receivers: [otlp]\n      processors: [batch]\n      exporters: %s\n", p, list)
	}
	return b.String()
}

// SyncBuffer is a bytes.Buffer that a process's output streams and the test reading
// it may use at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
