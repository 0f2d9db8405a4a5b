// Package config is the configuration of the stwbridge forwarder: defaults, a YAML file
// in the OpenTelemetry Collector's style, environment variables and command-line flags,
// applied in that order (a flag beats its variable, which beats the file, which beats
// the default), then validated as a whole. Every error names the flag, variable or key
// that is wrong and says what is allowed.
package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/live"
)

// Defaults of the forwarder that are not the defaults of bridge or otlpexport.
const (
	// DefaultListen is the OTLP/gRPC receiver's address (the OTLP port, on loopback).
	DefaultListen = "127.0.0.1:4317"
	// DefaultHTTPListen is the HTTP receiver's address (OTLP/HTTP, /v1/stw, /v1/live, /metrics).
	DefaultHTTPListen = "127.0.0.1:4318"
	// DefaultMaxRecvMsgSizeMiB bounds one OTLP/gRPC request, in MiB (the Collector's default).
	DefaultMaxRecvMsgSizeMiB = 4
	// DefaultMaxRequestBodySize bounds one HTTP request body, in bytes (20 MiB, as the Collector).
	DefaultMaxRequestBodySize = 20 << 20
	// DefaultReadTimeout bounds reading one HTTP request, body included (30 s).
	DefaultReadTimeout = 30 * time.Second
	// DefaultIdleTimeout closes an HTTP keep-alive connection idle this long (1 min,
	// as the Collector's confighttp).
	DefaultIdleTimeout = time.Minute
	// DefaultMaxConnections bounds the connections each listener serves at once;
	// more wait in the listen backlog until one closes.
	DefaultMaxConnections = 1000
	// DefaultMaxLiveWatchers bounds the GET /v1/live watchers connected at once.
	DefaultMaxLiveWatchers = live.DefaultMaxWatchers
	// DefaultMaxConcurrentStreams bounds the concurrent gRPC calls on one connection.
	DefaultMaxConcurrentStreams = 100
	// DefaultMaxConnectionIdle closes a gRPC connection without calls for this long
	// (with a GOAWAY: clients reconnect when they next export).
	DefaultMaxConnectionIdle = 2 * time.Minute
	// DefaultKeepaliveTime is how long a gRPC connection may be silent before the
	// server pings it; DefaultKeepaliveTimeout how long it then waits for the answer
	// before it closes the connection.
	DefaultKeepaliveTime    = time.Minute
	DefaultKeepaliveTimeout = 20 * time.Second
	// DefaultKeepaliveMinTime is the shortest interval between client pings the
	// server accepts; a client that pings more often is disconnected.
	DefaultKeepaliveMinTime = 10 * time.Second
	// DefaultExportTimeout bounds one export request downstream.
	DefaultExportTimeout = 10 * time.Second
	// DefaultShutdownTimeout is how long a graceful shutdown may take before the process
	// exits anyway.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultQueueEvents bounds each pipeline tail's queue, in events: larger than the
	// SDK side's bridge.DefaultMaxQueueEvents, as one forwarder takes the streams of many
	// producers, and one OTLP request must fit whole (a request that does not fit is
	// refused as retryable).
	DefaultQueueEvents = 65536
	// DefaultQueueBytes bounds each pipeline tail's queue by the estimated size of its
	// events (64 MiB).
	DefaultQueueBytes = 64 << 20
	// DefaultBatchTimeout is how long an event waits at most in the pipeline for its
	// batch to fill: shorter than the SDK side's bridge.DefaultFlushInterval, as this is
	// a second hop on the way to the backend and open spans should show at once (under
	// load, batches fill by size first).
	DefaultBatchTimeout = 20 * time.Millisecond
	// DefaultGroupWait is how long the stdout printer waits for more spans of a trace
	// before printing the trace's tree.
	DefaultGroupWait = 500 * time.Millisecond
	// DefaultPrintOpenAfter is how long a span stays open before the stdout printer
	// reports it (again at 10 s, 1 min, then every 10 min).
	DefaultPrintOpenAfter = time.Second
)

// Config is the whole configuration of `stwbridge serve`. Its YAML form is the config
// file; field tags give the key names.
type Config struct {
	Receivers     Receivers `yaml:"receivers"`
	Exporter      Exporter  `yaml:"exporter"`
	Assembler     Assembler `yaml:"assembler"`
	Pipeline      Pipeline  `yaml:"pipeline"`
	Stdout        Stdout    `yaml:"stdout"`
	ForwardEvents bool      `yaml:"forward_events"`
	Workerd       Workerd   `yaml:"workerd"`
	Log           Log       `yaml:"log"`
	// ShutdownTimeout bounds the graceful shutdown on SIGTERM/SIGINT.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// Persistence, MemoryLimiter and Limits are described in guards.go.
	Persistence   Persistence   `yaml:"persistence"`
	MemoryLimiter MemoryLimiter `yaml:"memory_limiter"`
	Limits        Limits        `yaml:"limits"`

	// File is the config file that was read ("" for none); not a YAML key.
	File string `yaml:"-"`
}

// Workerd configures what POST /v1/stw makes of workerd's tail events.
type Workerd struct {
	// ServiceName is the service.name of every invocation; empty: its script name.
	ServiceName string `yaml:"service_name"`
	// ServiceNamePrefix goes before the service.name of every named invocation.
	ServiceNamePrefix string `yaml:"service_name_prefix"`
	// ExportUnsampled keeps invocations an upstream did not sample (dropped by default).
	ExportUnsampled bool `yaml:"export_unsampled"`
}

// Receivers configures the listeners.
type Receivers struct {
	OTLP OTLPReceivers `yaml:"otlp"`
	// Auth requires a bearer token on both listeners (see guards.go).
	Auth Auth `yaml:"auth"`
}

// OTLPReceivers holds the two OTLP protocols, as the Collector's otlpreceiver.
type OTLPReceivers struct {
	GRPC GRPCReceiver `yaml:"grpc"`
	HTTP HTTPReceiver `yaml:"http"`
}

// GRPCReceiver is the OTLP/gRPC listener (TraceService, LogsService, health).
type GRPCReceiver struct {
	Endpoint          string    `yaml:"endpoint"`
	MaxRecvMsgSizeMiB int       `yaml:"max_recv_msg_size_mib"`
	TLS               ServerTLS `yaml:"tls"`
	// MaxConnections bounds the connections served at once; more wait.
	MaxConnections int `yaml:"max_connections"`
	// MaxConcurrentStreams bounds the concurrent calls on one connection.
	MaxConcurrentStreams int       `yaml:"max_concurrent_streams"`
	Keepalive            Keepalive `yaml:"keepalive"`
}

// Keepalive holds the gRPC server's keepalive settings, as the Collector's configgrpc.
type Keepalive struct {
	ServerParameters  KeepaliveServerParameters  `yaml:"server_parameters"`
	EnforcementPolicy KeepaliveEnforcementPolicy `yaml:"enforcement_policy"`
}

// KeepaliveServerParameters: a connection without calls for MaxConnectionIdle is
// closed; a silent one is pinged after Time and closed when no answer comes within
// Timeout.
type KeepaliveServerParameters struct {
	MaxConnectionIdle Duration `yaml:"max_connection_idle"`
	Time              Duration `yaml:"time"`
	Timeout           Duration `yaml:"timeout"`
}

// KeepaliveEnforcementPolicy: a client that pings more often than MinTime (or without
// calls in flight, unless PermitWithoutStream) is disconnected.
type KeepaliveEnforcementPolicy struct {
	MinTime             Duration `yaml:"min_time"`
	PermitWithoutStream bool     `yaml:"permit_without_stream"`
}

// HTTPReceiver is the HTTP listener: OTLP/HTTP, /v1/stw, /v1/live and /metrics.
type HTTPReceiver struct {
	Endpoint           string    `yaml:"endpoint"`
	MaxRequestBodySize int64     `yaml:"max_request_body_size"`
	TLS                ServerTLS `yaml:"tls"`
	// ReadTimeout bounds reading one request, body included (not /v1/live streams).
	ReadTimeout Duration `yaml:"read_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConnections bounds the connections served at once; more wait.
	MaxConnections int `yaml:"max_connections"`
	// MaxLiveWatchers bounds the GET /v1/live watchers; more get 503.
	MaxLiveWatchers int `yaml:"max_live_watchers"`
}

// Exporter configures the downstream OTLP/gRPC connection.
type Exporter struct {
	// Endpoint is http://host:port (plaintext) or https://host:port (TLS); empty prints
	// spans to stdout instead.
	Endpoint string            `yaml:"endpoint"`
	TLS      TLS               `yaml:"tls"`
	Headers  map[string]string `yaml:"headers"`
	// Compression is "none" (the default, as in the OTLP spec: the hop to a Collector
	// is usually local, where gzip costs more CPU than it saves) or "gzip".
	Compression string   `yaml:"compression"`
	Timeout     Duration `yaml:"timeout"`
	// MaxRequestBytes splits larger batches; 0 takes otlpexport's default.
	MaxRequestBytes int            `yaml:"max_request_bytes"`
	RetryOnFailure  RetryOnFailure `yaml:"retry_on_failure"`
	SendingQueue    SendingQueue   `yaml:"sending_queue"`
}

// RetryOnFailure configures retries of failed exports, as the Collector's
// retry_on_failure. Zero durations take otlpexport's defaults (5s, 30s, 1m).
type RetryOnFailure struct {
	Enabled         bool     `yaml:"enabled"`
	InitialInterval Duration `yaml:"initial_interval"`
	MaxInterval     Duration `yaml:"max_interval"`
	MaxElapsedTime  Duration `yaml:"max_elapsed_time"`
}

// SendingQueue bounds the exporter's queue, as the Collector's sending_queue. Zero
// values take otlpexport's defaults.
type SendingQueue struct {
	QueueSize    int `yaml:"queue_size"`    // requests
	QueueBytes   int `yaml:"queue_bytes"`   // protobuf bytes
	NumConsumers int `yaml:"num_consumers"` // concurrent senders (1 to 64)
}

// TLS configures the client side of TLS towards an https:// endpoint.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Assembler configures span assembly and unfinished-span detection.
type Assembler struct {
	OrphanAfter   Duration `yaml:"orphan_after"`
	StreamTimeout Duration `yaml:"stream_timeout"`
	MaxOpenSpans  int      `yaml:"max_open_spans"`
	ReorderWindow int      `yaml:"reorder_window"`
	// SweepInterval is how often open spans are checked; 0 means min(1s, orphan_after/10,
	// stream_timeout/10).
	SweepInterval Duration `yaml:"sweep_interval"`
	// MaxAttributesPerSpan and MaxEventsPerSpan bound what one assembled span keeps;
	// the rest is dropped and counted.
	MaxAttributesPerSpan int `yaml:"max_attributes_per_span"`
	MaxEventsPerSpan     int `yaml:"max_events_per_span"`
	// MaxLateSpans, MaxLateBytes and ForgetLateAfter bound the spans reported
	// unfinished that are remembered for a late end; negative keeps none.
	MaxLateSpans    int      `yaml:"max_late_spans"`
	MaxLateBytes    int      `yaml:"max_late_bytes"`
	ForgetLateAfter Duration `yaml:"forget_late_after"`
}

// Pipeline configures the bounded event pipeline between receivers and tails.
type Pipeline struct {
	Queue Queue `yaml:"queue"`
	Batch Batch `yaml:"batch"`
}

// Queue bounds each tail's queue.
type Queue struct {
	MaxEvents int `yaml:"max_events"`
	MaxBytes  int `yaml:"max_bytes"`
}

// Batch shapes the batches handed to tails.
type Batch struct {
	Size    int      `yaml:"size"`
	Timeout Duration `yaml:"timeout"`
}

// Stdout configures the printer used when there is no exporter endpoint.
type Stdout struct {
	// GroupWait is how long to wait for more spans of a trace before printing it.
	GroupWait Duration `yaml:"group_wait"`
	// OpenAfter is how long a span stays open before a "still open" line reports it
	// (again at 10 s, 1 min, then every 10 min); 0 turns the reports off.
	OpenAfter Duration `yaml:"open_after"`
}

// Log configures the process's own logs.
type Log struct {
	Format string `yaml:"format"` // text or json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Receivers: Receivers{OTLP: OTLPReceivers{
			GRPC: GRPCReceiver{Endpoint: DefaultListen, MaxRecvMsgSizeMiB: DefaultMaxRecvMsgSizeMiB,
				MaxConnections: DefaultMaxConnections, MaxConcurrentStreams: DefaultMaxConcurrentStreams,
				Keepalive: Keepalive{
					ServerParameters: KeepaliveServerParameters{MaxConnectionIdle: Duration(DefaultMaxConnectionIdle),
						Time: Duration(DefaultKeepaliveTime), Timeout: Duration(DefaultKeepaliveTimeout)},
					EnforcementPolicy: KeepaliveEnforcementPolicy{MinTime: Duration(DefaultKeepaliveMinTime), PermitWithoutStream: true},
				}},
			HTTP: HTTPReceiver{Endpoint: DefaultHTTPListen, MaxRequestBodySize: DefaultMaxRequestBodySize,
				ReadTimeout: Duration(DefaultReadTimeout), IdleTimeout: Duration(DefaultIdleTimeout),
				MaxConnections: DefaultMaxConnections, MaxLiveWatchers: DefaultMaxLiveWatchers},
		}},
		Exporter: Exporter{
			Compression:    "none",
			Timeout:        Duration(DefaultExportTimeout),
			RetryOnFailure: RetryOnFailure{Enabled: true},
		},
		Assembler: Assembler{
			OrphanAfter:   Duration(bridge.DefaultOrphanAfter),
			StreamTimeout: Duration(bridge.DefaultStreamTimeout),
			MaxOpenSpans:  bridge.DefaultMaxOpenSpans,
			ReorderWindow: bridge.DefaultReorderWindow,

			MaxAttributesPerSpan: bridge.DefaultMaxAttributesPerSpan,
			MaxEventsPerSpan:     bridge.DefaultMaxEventsPerSpan,
			MaxLateSpans:         bridge.DefaultMaxLateSpans,
			MaxLateBytes:         bridge.DefaultMaxLateBytes,
			ForgetLateAfter:      Duration(bridge.DefaultForgetLateAfter),
		},
		Pipeline: Pipeline{
			Queue: Queue{MaxEvents: DefaultQueueEvents, MaxBytes: DefaultQueueBytes},
			Batch: Batch{Size: bridge.DefaultBatchSize, Timeout: Duration(DefaultBatchTimeout)},
		},
		Stdout:          Stdout{GroupWait: Duration(DefaultGroupWait), OpenAfter: Duration(DefaultPrintOpenAfter)},
		Log:             Log{Format: "text", Level: "info"},
		ShutdownTimeout: Duration(DefaultShutdownTimeout),
		Persistence:     Persistence{MaxBytes: DefaultPersistenceMaxBytes, CheckpointInterval: Duration(DefaultCheckpointInterval)},
		MemoryLimiter:   MemoryLimiter{CheckInterval: Duration(DefaultMemoryCheckInterval), RetryAfter: Duration(DefaultMemoryRetryAfter)},
		Limits:          Limits{MaxAttributeValueLength: DefaultMaxAttributeValueLength, MaxOpenSpansPerStream: DefaultMaxOpenSpansPerStream, MaxAttributesBytes: DefaultMaxAttributesBytes},
	}
}

// Forward describes the parsed exporter endpoint.
type Forward struct {
	HostPort string
	TLS      bool
}

// ParseForward parses an exporter endpoint URL: http://host:port or https://host:port.
func ParseForward(s string) (Forward, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return Forward{}, fmt.Errorf("%q is not a downstream URL: want http://host:port (plaintext) or https://host:port (TLS)", s)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "4317")
	}
	return Forward{HostPort: host, TLS: u.Scheme == "https"}, nil
}

// SweepEvery returns how often the assembler's open spans are checked.
func (c *Config) SweepEvery() time.Duration {
	if c.Assembler.SweepInterval > 0 {
		return c.Assembler.SweepInterval.D()
	}
	d := time.Second
	for _, t := range []time.Duration{c.Assembler.OrphanAfter.D() / 10, c.Assembler.StreamTimeout.D() / 10} {
		if t > 0 && t < d {
			d = t
		}
	}
	return max(d, 10*time.Millisecond)
}

// Validate checks the whole configuration and names the first wrong key.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, a ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, a...))
	}
	hostPort := func(key, v string) {
		if _, _, err := net.SplitHostPort(v); err != nil {
			bad(key, "%q is not host:port (e.g. 127.0.0.1:4317, or :4317 for every interface)", v)
		}
	}
	hostPort("receivers.otlp.grpc.endpoint", c.Receivers.OTLP.GRPC.Endpoint)
	hostPort("receivers.otlp.http.endpoint", c.Receivers.OTLP.HTTP.Endpoint)
	if c.Receivers.OTLP.GRPC.MaxRecvMsgSizeMiB <= 0 {
		bad("receivers.otlp.grpc.max_recv_msg_size_mib", "must be a positive number of MiB, got %d", c.Receivers.OTLP.GRPC.MaxRecvMsgSizeMiB)
	}
	if c.Receivers.OTLP.HTTP.MaxRequestBodySize <= 0 {
		bad("receivers.otlp.http.max_request_body_size", "must be a positive number of bytes, got %d", c.Receivers.OTLP.HTTP.MaxRequestBodySize)
	}
	c.validateConnections(bad)
	if c.Exporter.Endpoint != "" {
		f, err := ParseForward(c.Exporter.Endpoint)
		if err != nil {
			bad("exporter.endpoint", "%v", err)
		} else if !f.TLS && c.Exporter.TLS != (TLS{}) {
			bad("exporter.tls", "is set but exporter.endpoint %q is plaintext: use https://", c.Exporter.Endpoint)
		}
	}
	if (c.Exporter.TLS.CertFile == "") != (c.Exporter.TLS.KeyFile == "") {
		bad("exporter.tls", "cert_file and key_file go together: set both or neither")
	}
	switch c.Exporter.Compression {
	case "gzip", "none":
	default:
		bad("exporter.compression", "%q is not allowed: use gzip or none", c.Exporter.Compression)
	}
	for k := range c.Exporter.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			bad("exporter.headers", "%q is not a valid header name", k)
		}
	}
	positiveDur := func(key string, d Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration such as 500ms, 10s or 5m, got %s", d.D())
		}
	}
	positiveInt := func(key string, n int) {
		if n <= 0 {
			bad(key, "must be a positive number, got %d", n)
		}
	}
	positiveDur("exporter.timeout", c.Exporter.Timeout)
	nonNegative := func(key string, n int) {
		if n < 0 {
			bad(key, "must not be negative (0 takes the default), got %d", n)
		}
	}
	nonNegative("exporter.max_request_bytes", c.Exporter.MaxRequestBytes)
	if n := c.Exporter.MaxRequestBytes; n > 0 && n < 1024 {
		bad("exporter.max_request_bytes", "use at least 1024 bytes, got %d", n)
	}
	nonNegative("exporter.sending_queue.queue_size", c.Exporter.SendingQueue.QueueSize)
	nonNegative("exporter.sending_queue.queue_bytes", c.Exporter.SendingQueue.QueueBytes)
	if n := c.Exporter.SendingQueue.NumConsumers; n < 0 || n > 64 {
		bad("exporter.sending_queue.num_consumers", "use 1 to 64 (0 takes the default), got %d", n)
	}
	r := c.Exporter.RetryOnFailure
	for key, d := range map[string]Duration{"initial_interval": r.InitialInterval, "max_interval": r.MaxInterval, "max_elapsed_time": r.MaxElapsedTime} {
		if d < 0 {
			bad("exporter.retry_on_failure."+key, "must not be negative (0 takes the default)")
		}
	}
	if r.InitialInterval > 0 && r.MaxInterval > 0 && r.MaxInterval < r.InitialInterval {
		bad("exporter.retry_on_failure.max_interval", "%s is less than initial_interval %s", r.MaxInterval.D(), r.InitialInterval.D())
	}
	positiveDur("assembler.orphan_after", c.Assembler.OrphanAfter)
	positiveDur("assembler.stream_timeout", c.Assembler.StreamTimeout)
	positiveInt("assembler.max_open_spans", c.Assembler.MaxOpenSpans)
	positiveInt("assembler.reorder_window", c.Assembler.ReorderWindow)
	positiveInt("assembler.max_attributes_per_span", c.Assembler.MaxAttributesPerSpan)
	positiveInt("assembler.max_events_per_span", c.Assembler.MaxEventsPerSpan)
	for key, n := range map[string]int64{"assembler.max_late_spans": int64(c.Assembler.MaxLateSpans),
		"assembler.max_late_bytes": int64(c.Assembler.MaxLateBytes), "assembler.forget_late_after": int64(c.Assembler.ForgetLateAfter)} {
		if n == 0 {
			bad(key, "must not be 0: set a positive bound, or a negative one to remember no span reported unfinished")
		}
	}
	if c.Assembler.SweepInterval < 0 {
		bad("assembler.sweep_interval", "must not be negative (0 picks it from orphan_after and stream_timeout)")
	}
	positiveInt("pipeline.queue.max_events", c.Pipeline.Queue.MaxEvents)
	positiveInt("pipeline.queue.max_bytes", c.Pipeline.Queue.MaxBytes)
	positiveInt("pipeline.batch.size", c.Pipeline.Batch.Size)
	positiveDur("pipeline.batch.timeout", c.Pipeline.Batch.Timeout)
	positiveDur("stdout.group_wait", c.Stdout.GroupWait)
	if c.Stdout.OpenAfter < 0 {
		bad("stdout.open_after", "must not be negative (0 turns the reports off), got %s", c.Stdout.OpenAfter.D())
	}
	positiveDur("shutdown_timeout", c.ShutdownTimeout)
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not allowed: use text or json", c.Log.Format)
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		bad("log.level", "%v", err)
	}
	c.validateGuards(bad)
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Duration is a time.Duration written as "500ms", "10s", "5m" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// validateConnections checks the listeners' timeouts and connection limits.
func (c *Config) validateConnections(bad func(key, format string, a ...any)) {
	g, h := c.Receivers.OTLP.GRPC, c.Receivers.OTLP.HTTP
	for key, d := range map[string]Duration{
		"receivers.otlp.http.read_timeout":                                    h.ReadTimeout,
		"receivers.otlp.http.idle_timeout":                                    h.IdleTimeout,
		"receivers.otlp.grpc.keepalive.server_parameters.max_connection_idle": g.Keepalive.ServerParameters.MaxConnectionIdle,
		"receivers.otlp.grpc.keepalive.server_parameters.time":                g.Keepalive.ServerParameters.Time,
		"receivers.otlp.grpc.keepalive.server_parameters.timeout":             g.Keepalive.ServerParameters.Timeout,
		"receivers.otlp.grpc.keepalive.enforcement_policy.min_time":           g.Keepalive.EnforcementPolicy.MinTime,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration such as 500ms, 10s or 5m, got %s", d.D())
		}
	}
	for key, n := range map[string]int{
		"receivers.otlp.grpc.max_connections":        g.MaxConnections,
		"receivers.otlp.grpc.max_concurrent_streams": g.MaxConcurrentStreams,
		"receivers.otlp.http.max_connections":        h.MaxConnections,
		"receivers.otlp.http.max_live_watchers":      h.MaxLiveWatchers,
	} {
		if n <= 0 {
			bad(key, "must be a positive number, got %d", n)
		}
	}
}
