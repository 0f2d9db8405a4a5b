package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stwbridge.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, args []string, vars map[string]string) Config {
	t.Helper()
	c, err := Load(args, env(vars), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Load(%q): %v", args, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := load(t, nil, nil)
	want := Default()
	if c.Receivers != want.Receivers || c.Assembler != want.Assembler || c.Exporter.Endpoint != "" || c.Log != want.Log {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if c.Receivers.OTLP.GRPC.Endpoint != "127.0.0.1:4317" || c.Receivers.OTLP.HTTP.Endpoint != "127.0.0.1:4318" {
		t.Fatalf("default listen addresses: %+v", c.Receivers)
	}
	if c.ShutdownTimeout.D() != 10*time.Second {
		t.Fatalf("default shutdown timeout %v", c.ShutdownTimeout.D())
	}
}

// TestEachFlagAndVariable checks that every flag and its variable set their field.
func TestEachFlagAndVariable(t *testing.T) {
	cases := []struct {
		flag, env, value string
		get              func(Config) any
		want             any
	}{
		{"listen", "STWBRIDGE_LISTEN", "127.0.0.1:5317", func(c Config) any { return c.Receivers.OTLP.GRPC.Endpoint }, "127.0.0.1:5317"},
		{"http-listen", "STWBRIDGE_HTTP_LISTEN", "127.0.0.1:5318", func(c Config) any { return c.Receivers.OTLP.HTTP.Endpoint }, "127.0.0.1:5318"},
		{"forward", "STWBRIDGE_FORWARD", "https://collector:4317", func(c Config) any { return c.Exporter.Endpoint }, "https://collector:4317"},
		{"orphan-after", "STWBRIDGE_ORPHAN_AFTER", "90s", func(c Config) any { return c.Assembler.OrphanAfter.D() }, 90 * time.Second},
		{"stream-timeout", "STWBRIDGE_STREAM_TIMEOUT", "7s", func(c Config) any { return c.Assembler.StreamTimeout.D() }, 7 * time.Second},
		{"print-open-after", "STWBRIDGE_PRINT_OPEN_AFTER", "30s", func(c Config) any { return c.Stdout.OpenAfter.D() }, 30 * time.Second},
		{"forward-events", "STWBRIDGE_FORWARD_EVENTS", "true", func(c Config) any { return c.ForwardEvents }, true},
		{"workerd-service-name", "STWBRIDGE_WORKERD_SERVICE_NAME", "edge", func(c Config) any { return c.Workerd.ServiceName }, "edge"},
		{"workerd-service-name-prefix", "STWBRIDGE_WORKERD_SERVICE_NAME_PREFIX", "cf-", func(c Config) any { return c.Workerd.ServiceNamePrefix }, "cf-"},
		{"workerd-export-unsampled", "STWBRIDGE_WORKERD_EXPORT_UNSAMPLED", "true", func(c Config) any { return c.Workerd.ExportUnsampled }, true},
		{"log-format", "STWBRIDGE_LOG_FORMAT", "json", func(c Config) any { return c.Log.Format }, "json"},
		{"log-level", "STWBRIDGE_LOG_LEVEL", "debug", func(c Config) any { return c.Log.Level }, "debug"},
		{"shutdown-timeout", "STWBRIDGE_SHUTDOWN_TIMEOUT", "3s", func(c Config) any { return c.ShutdownTimeout.D() }, 3 * time.Second},
		{"data-dir", "STWBRIDGE_DATA_DIR", "/var/lib/stwbridge", func(c Config) any { return c.Persistence.DataDir }, "/var/lib/stwbridge"},
		{"memory-limit-mib", "STWBRIDGE_MEMORY_LIMIT_MIB", "512", func(c Config) any { return c.MemoryLimiter.LimitMiB }, 512},
		{"bearer-token-file", "STWBRIDGE_BEARER_TOKEN_FILE", "/run/token", func(c Config) any { return c.Receivers.Auth.BearerTokenFile }, "/run/token"},
		{"tls-cert-file", "STWBRIDGE_TLS_CERT_FILE", "/c.pem", func(c Config) any {
			return [2]string{c.Receivers.OTLP.GRPC.TLS.CertFile, c.Receivers.OTLP.HTTP.TLS.CertFile}
		}, [2]string{"/c.pem", "/c.pem"}},
		{"tls-key-file", "STWBRIDGE_TLS_KEY_FILE", "/k.pem", func(c Config) any {
			return [2]string{c.Receivers.OTLP.GRPC.TLS.KeyFile, c.Receivers.OTLP.HTTP.TLS.KeyFile}
		}, [2]string{"/k.pem", "/k.pem"}},
		{"tls-client-ca-file", "STWBRIDGE_TLS_CLIENT_CA_FILE", "/ca.pem", func(c Config) any {
			return [2]string{c.Receivers.OTLP.GRPC.TLS.ClientCAFile, c.Receivers.OTLP.HTTP.TLS.ClientCAFile}
		}, [2]string{"/ca.pem", "/ca.pem"}},
	}
	if len(cases) != len(options)-1 { // --config is tested on its own
		t.Fatalf("%d flags tested, %d defined: test every flag", len(cases), len(options)-1)
	}
	for _, tc := range cases {
		t.Run(tc.flag, func(t *testing.T) {
			if got := tc.get(load(t, []string{"--" + tc.flag + "=" + tc.value}, nil)); got != tc.want {
				t.Errorf("--%s=%s: got %v, want %v", tc.flag, tc.value, got, tc.want)
			}
			if got := tc.get(load(t, nil, map[string]string{tc.env: tc.value})); got != tc.want {
				t.Errorf("%s=%s: got %v, want %v", tc.env, tc.value, got, tc.want)
			}
		})
	}
	// 0 turns the open-span reports off.
	if c := load(t, []string{"--print-open-after=0"}, nil); c.Stdout.OpenAfter != 0 {
		t.Errorf("--print-open-after=0 gave %v", c.Stdout.OpenAfter.D())
	}
	// A boolean flag without a value means true.
	if c := load(t, []string{"--forward-events"}, nil); !c.ForwardEvents {
		t.Error("--forward-events without a value did not turn it on")
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "assembler:\n  orphan_after: 1m\n  stream_timeout: 20s\nlog:\n  level: warn\n")
	vars := map[string]string{"STWBRIDGE_CONFIG": file, "STWBRIDGE_ORPHAN_AFTER": "2m", "STWBRIDGE_LOG_LEVEL": "error"}
	c := load(t, []string{"--orphan-after=3m"}, vars)
	if got := c.Assembler.OrphanAfter.D(); got != 3*time.Minute {
		t.Errorf("flag should beat env and file: orphan_after = %v", got)
	}
	if c.Log.Level != "error" {
		t.Errorf("env should beat file: log.level = %q", c.Log.Level)
	}
	if got := c.Assembler.StreamTimeout.D(); got != 20*time.Second {
		t.Errorf("file should beat default: stream_timeout = %v", got)
	}
	if c.Assembler.MaxOpenSpans != Default().Assembler.MaxOpenSpans {
		t.Errorf("keys the file leaves out keep their default: max_open_spans = %d", c.Assembler.MaxOpenSpans)
	}
	if c.File != file {
		t.Errorf("File = %q, want %q", c.File, file)
	}
	// --config beats STWBRIDGE_CONFIG.
	other := writeFile(t, "log:\n  level: debug\n")
	if c := load(t, []string{"--config", other}, map[string]string{"STWBRIDGE_CONFIG": file}); c.Log.Level != "debug" || c.File != other {
		t.Errorf("--config should beat STWBRIDGE_CONFIG: level %q file %q", c.Log.Level, c.File)
	}
	// An explicit empty --forward beats the variable: print to stdout.
	if c := load(t, []string{"--forward="}, map[string]string{"STWBRIDGE_FORWARD": "http://x:1"}); c.Exporter.Endpoint != "" {
		t.Errorf("--forward= should clear the endpoint, got %q", c.Exporter.Endpoint)
	}
}

// TestEveryFileKey sets every key of the file and checks each one arrived.
func TestEveryFileKey(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, `
receivers:
  otlp:
    grpc:
      endpoint: 127.0.0.1:6317
      max_recv_msg_size_mib: 8
      max_connections: 11
      max_concurrent_streams: 12
      keepalive:
        server_parameters:
          max_connection_idle: 13s
          time: 14s
          timeout: 15s
        enforcement_policy:
          min_time: 16s
          permit_without_stream: false
    http:
      endpoint: 127.0.0.1:6318
      max_request_body_size: 1000000
      read_timeout: 17s
      idle_timeout: 18s
      max_connections: 19
      max_live_watchers: 20
exporter:
  endpoint: https://collector.example:4317
  tls:
    ca_file: `+dir+`/ca.pem
    cert_file: `+dir+`/c.pem
    key_file: `+dir+`/k.pem
    server_name: collector
    insecure_skip_verify: true
  headers:
    authorization: Bearer x
  compression: gzip
  timeout: 3s
  max_request_bytes: 2048
  retry_on_failure:
    enabled: false
    initial_interval: 1s
    max_interval: 2s
    max_elapsed_time: 3s
  sending_queue:
    queue_size: 10
    queue_bytes: 4096
    num_consumers: 3
assembler:
  orphan_after: 2m
  stream_timeout: 5s
  max_open_spans: 1234
  reorder_window: 16
  sweep_interval: 250ms
  max_attributes_per_span: 64
  max_events_per_span: 32
  max_late_spans: 500
  max_late_bytes: 1048576
  forget_late_after: 90s
pipeline:
  queue:
    max_events: 100
    max_bytes: 200000
  batch:
    size: 50
    timeout: 20ms
stdout:
  group_wait: 2s
  open_after: 5s
forward_events: true
log:
  format: json
  level: warn
shutdown_timeout: 4s
`)
	c := load(t, []string{"--config", file}, nil)
	want := Config{
		Receivers: Receivers{OTLP: OTLPReceivers{
			GRPC: GRPCReceiver{Endpoint: "127.0.0.1:6317", MaxRecvMsgSizeMiB: 8, MaxConnections: 11, MaxConcurrentStreams: 12,
				Keepalive: Keepalive{
					ServerParameters:  KeepaliveServerParameters{Duration(13 * time.Second), Duration(14 * time.Second), Duration(15 * time.Second)},
					EnforcementPolicy: KeepaliveEnforcementPolicy{MinTime: Duration(16 * time.Second)},
				}},
			HTTP: HTTPReceiver{Endpoint: "127.0.0.1:6318", MaxRequestBodySize: 1000000, ReadTimeout: Duration(17 * time.Second),
				IdleTimeout: Duration(18 * time.Second), MaxConnections: 19, MaxLiveWatchers: 20},
		}},
		Exporter: Exporter{
			Endpoint: "https://collector.example:4317",
			TLS:      TLS{CAFile: dir + "/ca.pem", CertFile: dir + "/c.pem", KeyFile: dir + "/k.pem", ServerName: "collector", InsecureSkipVerify: true},
			Headers:  map[string]string{"authorization": "Bearer x"}, Compression: "gzip", Timeout: Duration(3 * time.Second),
			MaxRequestBytes: 2048,
			RetryOnFailure:  RetryOnFailure{InitialInterval: Duration(time.Second), MaxInterval: Duration(2 * time.Second), MaxElapsedTime: Duration(3 * time.Second)},
			SendingQueue:    SendingQueue{QueueSize: 10, QueueBytes: 4096, NumConsumers: 3},
		},
		Assembler: Assembler{OrphanAfter: Duration(2 * time.Minute), StreamTimeout: Duration(5 * time.Second), MaxOpenSpans: 1234, ReorderWindow: 16, SweepInterval: Duration(250 * time.Millisecond),
			MaxAttributesPerSpan: 64, MaxEventsPerSpan: 32, MaxLateSpans: 500, MaxLateBytes: 1 << 20, ForgetLateAfter: Duration(90 * time.Second)},
		Pipeline:      Pipeline{Queue: Queue{MaxEvents: 100, MaxBytes: 200000}, Batch: Batch{Size: 50, Timeout: Duration(20 * time.Millisecond)}},
		Stdout:        Stdout{GroupWait: Duration(2 * time.Second), OpenAfter: Duration(5 * time.Second)},
		ForwardEvents: true, Log: Log{Format: "json", Level: "warn"}, ShutdownTimeout: Duration(4 * time.Second),
		File: file,
	}
	if c.Receivers != want.Receivers || c.Assembler != want.Assembler || c.Pipeline != want.Pipeline ||
		c.Stdout != want.Stdout || c.ForwardEvents != want.ForwardEvents || c.Log != want.Log ||
		c.ShutdownTimeout != want.ShutdownTimeout || c.File != want.File ||
		c.Exporter.Endpoint != want.Exporter.Endpoint || c.Exporter.TLS != want.Exporter.TLS ||
		c.Exporter.Headers["authorization"] != "Bearer x" || len(c.Exporter.Headers) != 1 ||
		c.Exporter.Compression != "gzip" || c.Exporter.Timeout != want.Exporter.Timeout ||
		c.Exporter.MaxRequestBytes != 2048 || c.Exporter.RetryOnFailure != want.Exporter.RetryOnFailure ||
		c.Exporter.SendingQueue != want.Exporter.SendingQueue {
		t.Fatalf("file keys not all applied:\n got %+v\nwant %+v", c, want)
	}
	if got := c.SweepEvery(); got != 250*time.Millisecond {
		t.Errorf("SweepEvery with sweep_interval set = %v", got)
	}
}

func TestSweepEveryDefault(t *testing.T) {
	c := Default()
	if got := c.SweepEvery(); got != time.Second {
		t.Errorf("default sweep = %v, want 1s", got)
	}
	c.Assembler.OrphanAfter = Duration(2 * time.Second)
	if got := c.SweepEvery(); got != 200*time.Millisecond {
		t.Errorf("sweep with orphan_after 2s = %v, want 200ms", got)
	}
}

// TestErrorsNameTheCulprit checks that each kind of mistake fails with a message that
// names the flag, variable or key and says what is allowed.
func TestErrorsNameTheCulprit(t *testing.T) {
	cases := []struct {
		name string
		args []string
		vars map[string]string
		file string
		want []string
	}{
		{"unknown flag", []string{"--listn=x"}, nil, "", []string{"--listn", "--help"}},
		{"bad duration flag", []string{"--orphan-after=soon"}, nil, "", []string{"orphan-after", `"soon"`, "10s"}},
		{"negative duration flag", []string{"--orphan-after=-1s"}, nil, "", []string{"orphan-after", "positive"}},
		{"bad forward flag", []string{"--forward=ftp://x:1"}, nil, "", []string{"forward", "http://host:port"}},
		{"bad log format", []string{"--log-format=xml"}, nil, "", []string{"log-format", "text or json"}},
		{"bad log level", []string{"--log-level=loud"}, nil, "", []string{"log-level", "debug, info, warn or error"}},
		{"bad bool flag", []string{"--forward-events=maybe"}, nil, "", []string{"forward-events"}},
		{"negative print-open-after", []string{"--print-open-after=-1s"}, nil, "", []string{"print-open-after", "zero or more"}},
		{"negative open_after key", nil, nil, "stdout:\n  open_after: -1s\n", []string{"stdout.open_after", "negative"}},
		{"bad listen", []string{"--listen=nowhere"}, nil, "", []string{"receivers.otlp.grpc.endpoint", "host:port"}},
		{"extra argument", []string{"stray"}, nil, "", []string{`"stray"`}},
		{"bad env", nil, map[string]string{"STWBRIDGE_ORPHAN_AFTER": "x"}, "", []string{"STWBRIDGE_ORPHAN_AFTER", `"x"`}},
		{"bad env forward", nil, map[string]string{"STWBRIDGE_FORWARD": "collector:4317"}, "", []string{"STWBRIDGE_FORWARD", "https://host:port"}},
		{"missing file", []string{"--config=/nonexistent/x.yaml"}, nil, "", []string{"config file", "/nonexistent/x.yaml"}},
		{"unknown top key", nil, nil, "assmbler:\n  orphan_after: 1s\n", []string{"line 1", "unknown key assmbler", "assembler"}},
		{"unknown nested key", nil, nil, "exporter:\n  tls:\n    ca: x\n", []string{"line 3", "exporter.tls.ca", "ca_file"}},
		{"bad duration key", nil, nil, "assembler:\n  orphan_after: ten\n", []string{"line 2", "assembler.orphan_after", `"ten"`, "10s"}},
		{"bad int key", nil, nil, "assembler:\n  max_open_spans: lots\n", []string{"assembler.max_open_spans", "whole number"}},
		{"bad bool key", nil, nil, "forward_events: yes please\n", []string{"forward_events", "true or false"}},
		{"section as value", nil, nil, "exporter: x\n", []string{"exporter", "section"}},
		{"value as section", nil, nil, "exporter:\n  timeout:\n    a: 1\n", []string{"exporter.timeout"}},
		{"duplicate key", nil, nil, "log:\n  level: info\n  level: warn\n", []string{"log.level", "twice"}},
		{"zero limit", nil, nil, "assembler:\n  max_open_spans: 0\n", []string{"assembler.max_open_spans", "positive"}},
		{"zero late bound", nil, nil, "assembler:\n  max_late_bytes: 0\n", []string{"assembler.max_late_bytes", "must not be 0"}},
		{"bad compression", nil, nil, "exporter:\n  compression: zstd\n", []string{"exporter.compression", "gzip or none"}},
		{"tls on plaintext", nil, nil, "exporter:\n  endpoint: http://c:4317\n  tls:\n    insecure_skip_verify: true\n", []string{"exporter.tls", "https://"}},
		{"cert without key", nil, nil, "exporter:\n  endpoint: https://c:4317\n  tls:\n    cert_file: c.pem\n", []string{"exporter.tls", "key_file"}},
		{"retry intervals", nil, nil, "exporter:\n  retry_on_failure:\n    initial_interval: 5s\n    max_interval: 1s\n", []string{"exporter.retry_on_failure.max_interval"}},
		{"num consumers", nil, nil, "exporter:\n  sending_queue:\n    num_consumers: 100\n", []string{"exporter.sending_queue.num_consumers", "1 to 64"}},
		{"request bytes", nil, nil, "exporter:\n  max_request_bytes: 10\n", []string{"exporter.max_request_bytes", "1024"}},
		{"bad yaml", nil, nil, "a: [\n", []string{"config file"}},
		{"zero idle timeout", nil, nil, "receivers:\n  otlp:\n    http:\n      idle_timeout: 0s\n", []string{"receivers.otlp.http.idle_timeout", "positive"}},
		{"zero keepalive", nil, nil, "receivers:\n  otlp:\n    grpc:\n      keepalive:\n        server_parameters:\n          max_connection_idle: 0s\n",
			[]string{"receivers.otlp.grpc.keepalive.server_parameters.max_connection_idle", "positive"}},
		{"zero connections", nil, nil, "receivers:\n  otlp:\n    grpc:\n      max_connections: 0\n", []string{"receivers.otlp.grpc.max_connections", "positive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, tc.file))
			}
			_, err := Load(args, env(tc.vars), &bytes.Buffer{})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	_, err := Load([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: err = %v, want ErrHelp", err)
	}
	for _, o := range options {
		for _, w := range []string{"--" + o.flag, o.env, o.usage} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("help does not mention %q", w)
			}
		}
	}
}

func TestParseForward(t *testing.T) {
	for in, want := range map[string]Forward{
		"http://127.0.0.1:4317":  {HostPort: "127.0.0.1:4317"},
		"https://collector:443/": {HostPort: "collector:443", TLS: true},
		"https://collector":      {HostPort: "collector:4317", TLS: true},
		"http://[::1]:4317":      {HostPort: "[::1]:4317"},
	} {
		got, err := ParseForward(in)
		if err != nil || got != want {
			t.Errorf("ParseForward(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "collector:4317", "grpc://c:1", "http://c:1/v1/traces", "http://u@c:1", "http://c:1?x=1"} {
		if _, err := ParseForward(in); err == nil {
			t.Errorf("ParseForward(%q) succeeded, want an error", in)
		}
	}
}

func TestEmptyFile(t *testing.T) {
	c := load(t, []string{"--config", writeFile(t, "# nothing\n")}, nil)
	if c.Assembler != Default().Assembler {
		t.Errorf("empty file changed the config: %+v", c.Assembler)
	}
}
