package otlpexport

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"google.golang.org/grpc"
)

// Mode selects what the exporter sends.
type Mode int

const (
	// ModeEvents sends lifecycle events as OTLP logs. It is the default because the
	// receiver, stwbridge, assembles spans from the events itself: sending the complete
	// spans as well would roughly double the bytes on the wire for nothing.
	ModeEvents Mode = iota
	// ModeSpans sends only complete spans, assembled from the events by a
	// bridge.Assembler, as OTLP traces: for a receiver that knows nothing of STW, such
	// as a plain OpenTelemetry Collector.
	ModeSpans
	// ModeBoth sends both: events as logs and complete spans as traces.
	ModeBoth
)

// String returns "events", "spans" or "both".
func (m Mode) String() string {
	switch m {
	case ModeEvents:
		return "events"
	case ModeSpans:
		return "spans"
	case ModeBoth:
		return "both"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

func (m Mode) events() bool { return m == ModeEvents || m == ModeBoth }
func (m Mode) spans() bool  { return m == ModeSpans || m == ModeBoth }

// Defaults of the exporter.
const (
	// DefaultEndpoint is where the exporter sends when neither WithEndpoint nor an
	// OTEL_EXPORTER_OTLP_*ENDPOINT variable says otherwise: the OTLP spec's default
	// http://localhost:4317 (plaintext), with the loopback address spelled out so that
	// no resolver is asked and IPv6 is not tried first.
	DefaultEndpoint = "http://127.0.0.1:4317"
	// DefaultTimeout bounds one export request (one attempt), as the OTLP spec's
	// OTEL_EXPORTER_OTLP_TIMEOUT default of 10 s.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxInFlight is how many requests may be in flight at once: handed to the
	// senders and not finished (being sent, retried, or next in line). A call that
	// finds no room waits; the caller's own queue absorbs a burst.
	DefaultMaxInFlight = 8
	// DefaultMaxInFlightBytes bounds the requests in flight by protobuf size, in bytes.
	DefaultMaxInFlightBytes = 32 << 20
	// DefaultMaxRequestBytes is the largest request sent, by protobuf size in bytes;
	// larger batches are split. It stays below the 4 MiB that gRPC servers, the
	// Collector's OTLP receiver among them, accept by default.
	DefaultMaxRequestBytes = 3 << 20
	// DefaultSenders is how many goroutines send requests at once. Each owns a share of
	// the streams, so the events of a stream still leave in sequence order, and has its
	// own connection, so they do not share one HTTP/2 flow-control window. Requests
	// waiting behind a slow one leave together, up to the max request size.
	DefaultSenders = 2
	// DefaultSweepInterval is how often, in ModeSpans and ModeBoth, the assembler is
	// swept for spans that must be exported as unfinished.
	DefaultSweepInterval = 5 * time.Second
	// DefaultRetryInitialInterval is the first wait after a failed export, as in the
	// OTel Go exporters (5 s).
	DefaultRetryInitialInterval = 5 * time.Second
	// DefaultRetryMaxInterval caps the growth of the wait between retries (30 s).
	DefaultRetryMaxInterval = 30 * time.Second
	// DefaultRetryMaxElapsedTime is how long a request is retried before it is given
	// up (1 min).
	DefaultRetryMaxElapsedTime = time.Minute
)

// RetryConfig configures retries of failed export requests. Only the OTLP spec's
// retryable gRPC codes are retried (Canceled, DeadlineExceeded, Aborted, OutOfRange,
// Unavailable, DataLoss, and ResourceExhausted when the server sent a RetryInfo).
// Waits grow by half at each failure from InitialInterval up to MaxInterval, each
// with a random jitter of ±50%; a RetryInfo retry_delay from the server replaces the
// computed wait. A partial success is never retried.
type RetryConfig struct {
	// Enabled turns retries on; when false each request is tried once.
	Enabled bool
	// InitialInterval is the first wait after a failure.
	InitialInterval time.Duration
	// MaxInterval caps the growth of the wait (before jitter).
	MaxInterval time.Duration
	// MaxElapsedTime is how long a request may be retried before it is given up and
	// counted as failed; zero means no limit other than Shutdown.
	MaxElapsedTime time.Duration
}

// Option configures an Exporter.
type Option func(*config)

// security is what WithInsecure or WithTLSConfig chose.
type security struct {
	insecure bool
	tls      *tls.Config // nil with insecure, or for the system roots
}

// config collects the options. Transport fields are pointers (or nil maps) while no
// option set them, so that New reads the environment only for what is left unset.
type config struct {
	endpoint    *string
	security    *security
	headers     map[string]string
	compression *string
	timeout     *time.Duration

	mode             Mode
	retry            RetryConfig
	maxInFlight      int
	maxInFlightBytes int
	maxRequestBytes  int
	senders          int
	sweepInterval    time.Duration
	logger           *slog.Logger
	dialOptions      []grpc.DialOption
	assemblerOptions []bridge.AssemblerOption

	errs []error // invalid option values, reported by New
}

func newConfig(opts []Option) *config {
	c := &config{
		mode: ModeEvents,
		retry: RetryConfig{Enabled: true, InitialInterval: DefaultRetryInitialInterval,
			MaxInterval: DefaultRetryMaxInterval, MaxElapsedTime: DefaultRetryMaxElapsedTime},
		maxInFlight:      DefaultMaxInFlight,
		maxInFlightBytes: DefaultMaxInFlightBytes,
		maxRequestBytes:  DefaultMaxRequestBytes,
		senders:          DefaultSenders,
		sweepInterval:    DefaultSweepInterval,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("otlpexport: "+format, args...))
}

// WithEndpoint sets where to send: host:port of the OTLP/gRPC receiver, or a URL
// (http://host:port sends in plaintext, https://host:port over TLS, unless
// WithInsecure or WithTLSConfig says otherwise). It overrides the
// OTEL_EXPORTER_OTLP_*ENDPOINT variables.
func WithEndpoint(hostport string) Option {
	return func(c *config) { c.endpoint = &hostport }
}

// WithInsecure sends in plaintext, without TLS. It overrides WithTLSConfig given
// before it and the OTEL_EXPORTER_OTLP_*INSECURE and certificate variables.
func WithInsecure() Option {
	return func(c *config) { c.security = &security{insecure: true} }
}

// WithTLSConfig sends over TLS with this configuration: RootCAs to verify the server,
// Certificates for mutual TLS. A nil config means TLS with the system's roots. It
// overrides WithInsecure given before it and the certificate variables.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) {
		if cfg != nil {
			cfg = cfg.Clone()
		}
		c.security = &security{tls: cfg}
	}
}

// WithHeaders adds gRPC metadata to every request (an authorization token, a tenant).
// It replaces the OTEL_EXPORTER_OTLP_*HEADERS variables.
func WithHeaders(h map[string]string) Option {
	return func(c *config) {
		c.headers = maps.Clone(h)
		if c.headers == nil {
			c.headers = map[string]string{}
		}
	}
}

// WithCompression selects "gzip" or "none" (the default, as in the OTLP spec).
func WithCompression(name string) Option {
	return func(c *config) {
		if name != "gzip" && name != "none" {
			c.invalid("WithCompression(%q): unknown compression; use \"gzip\" or \"none\"", name)
			return
		}
		c.compression = &name
	}
}

// WithTimeout bounds each export request, each attempt of it (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithTimeout(%v): the timeout must be positive", d)
			return
		}
		c.timeout = &d
	}
}

// WithMode selects events (the default), spans or both.
func WithMode(m Mode) Option {
	return func(c *config) {
		if m != ModeEvents && m != ModeSpans && m != ModeBoth {
			c.invalid("WithMode(%d): unknown mode; use ModeEvents, ModeSpans or ModeBoth", int(m))
			return
		}
		c.mode = m
	}
}

// WithRetry sets the retry policy (default: enabled, with the DefaultRetry* intervals).
func WithRetry(r RetryConfig) Option {
	return func(c *config) {
		if r.Enabled && (r.InitialInterval <= 0 || r.MaxInterval < r.InitialInterval || r.MaxElapsedTime < 0) {
			c.invalid("WithRetry(%+v): need 0 < InitialInterval <= MaxInterval and MaxElapsedTime >= 0", r)
			return
		}
		c.retry = r
	}
}

// WithMaxInFlight bounds the requests in flight, retries included (default
// DefaultMaxInFlight). Consume, ConsumeSpans, ExportLogs and ExportTraces wait for
// room within their context; what finds none before it ends is dropped and counted.
func WithMaxInFlight(requests int) Option {
	return func(c *config) {
		if requests <= 0 {
			c.invalid("WithMaxInFlight(%d): allow at least one request in flight", requests)
			return
		}
		c.maxInFlight = requests
	}
}

// WithMaxInFlightBytes bounds the requests in flight by protobuf size (default
// DefaultMaxInFlightBytes). A request larger than the bound is sent alone.
func WithMaxInFlightBytes(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.invalid("WithMaxInFlightBytes(%d): the bound must be positive", n)
			return
		}
		c.maxInFlightBytes = n
	}
}

// WithMaxRequestBytes sets the largest request sent, by protobuf size (default
// DefaultMaxRequestBytes); larger batches are split into several requests. A single
// record or span larger than this is sent alone.
func WithMaxRequestBytes(n int) Option {
	return func(c *config) {
		if n < 1024 {
			c.invalid("WithMaxRequestBytes(%d): use at least 1024 bytes", n)
			return
		}
		c.maxRequestBytes = n
	}
}

// WithSenders sets how many goroutines, each with its own connection, send at once
// (default DefaultSenders). Streams are shared out among them, so per stream the
// events keep their order.
func WithSenders(n int) Option {
	return func(c *config) {
		if n <= 0 || n > 64 {
			c.invalid("WithSenders(%d): use 1 to 64 senders", n)
			return
		}
		c.senders = n
	}
}

// WithLogger sets where failures and partial successes are logged (default
// slog.Default()). Lines are rate-limited: at most one per kind of problem every
// few seconds, with the count of those left out.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithDialOptions adds gRPC dial options, after the exporter's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOptions = append(c.dialOptions, opts...) }
}

// WithAssemblerOptions configures the assembler used in ModeSpans and ModeBoth.
func WithAssemblerOptions(opts ...bridge.AssemblerOption) Option {
	return func(c *config) { c.assemblerOptions = append(c.assemblerOptions, opts...) }
}

// WithSweepInterval sets how often the assembler is swept for orphaned spans in
// ModeSpans and ModeBoth (default DefaultSweepInterval).
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithSweepInterval(%v): the interval must be positive", d)
			return
		}
		c.sweepInterval = d
	}
}
