package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// ErrHelp is returned by Load when the user asked for --help (the usage is written out).
var ErrHelp = flag.ErrHelp

// option is one setting that has a flag, an environment variable and a config key.
type option struct {
	flag, env, key, arg, usage string
	boolean                    bool
	set                        func(c *Config, v string) error
}

// options lists the settings of `stwbridge serve` that have a flag; the config file
// holds these and everything else.
var options = []option{
	{flag: "config", env: "STWBRIDGE_CONFIG", arg: "FILE",
		usage: "YAML config file in the Collector's style, for everything the flags do not cover (limits, TLS, headers, queues, modes)"},
	{flag: "listen", env: "STWBRIDGE_LISTEN", key: "receivers.otlp.grpc.endpoint", arg: "HOST:PORT",
		usage: "OTLP/gRPC receiver: TraceService, LogsService (stw.* lifecycle events) and the gRPC health service",
		set:   func(c *Config, v string) error { c.Receivers.OTLP.GRPC.Endpoint = v; return nil }},
	{flag: "http-listen", env: "STWBRIDGE_HTTP_LISTEN", key: "receivers.otlp.http.endpoint", arg: "HOST:PORT",
		usage: "HTTP receiver: OTLP/HTTP at /v1/traces and /v1/logs, workerd tail events at POST /v1/stw, live events at GET /v1/live and the live web view at /ui/, metrics at /metrics",
		set:   func(c *Config, v string) error { c.Receivers.OTLP.HTTP.Endpoint = v; return nil }},
	{flag: "forward", env: "STWBRIDGE_FORWARD", key: "exporter.endpoint", arg: "URL",
		usage: "downstream OTLP/gRPC receiver: http://host:port (plaintext) or https://host:port (TLS); empty prints spans to stdout as a tree per trace",
		set: func(c *Config, v string) error {
			if v != "" {
				if _, err := ParseForward(v); err != nil {
					return err
				}
			}
			c.Exporter.Endpoint = v
			return nil
		}},
	{flag: "print-open-after", env: "STWBRIDGE_PRINT_OPEN_AFTER", key: "stdout.open_after", arg: "DURATION",
		usage: "without --forward: print a span still open after this long, and again at 10s, 1m, then every 10m; 0: never",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("%q is not a duration of zero or more, such as 1s or 30s (0 turns the reports off)", v)
			}
			c.Stdout.OpenAfter = Duration(d)
			return nil
		}},
	{flag: "orphan-after", env: "STWBRIDGE_ORPHAN_AFTER", key: "assembler.orphan_after", arg: "DURATION",
		usage: "a span still open after this long is exported as unfinished (status Error, stw.unfinished=true)",
		set:   durationSetter(func(c *Config) *Duration { return &c.Assembler.OrphanAfter })},
	{flag: "stream-timeout", env: "STWBRIDGE_STREAM_TIMEOUT", key: "assembler.stream_timeout", arg: "DURATION",
		usage: "a producer silent this long (no event, no heartbeat) is taken for dead: its open spans are exported as unfinished",
		set:   durationSetter(func(c *Config) *Duration { return &c.Assembler.StreamTimeout })},
	{flag: "forward-events", env: "STWBRIDGE_FORWARD_EVENTS", key: "forward_events", arg: "", boolean: true,
		usage: "forward the lifecycle events (stw.span_open, ...) downstream too, as OTLP logs, for live views",
		set:   boolSetter(func(c *Config) *bool { return &c.ForwardEvents })},
	{flag: "workerd-service-name", env: "STWBRIDGE_WORKERD_SERVICE_NAME", key: "workerd.service_name", arg: "NAME",
		usage: "service.name of every workerd invocation's spans and events, instead of its script name",
		set:   func(c *Config, v string) error { c.Workerd.ServiceName = v; return nil }},
	{flag: "workerd-service-name-prefix", env: "STWBRIDGE_WORKERD_SERVICE_NAME_PREFIX", key: "workerd.service_name_prefix", arg: "PREFIX",
		usage: "put before the service.name of every workerd invocation (its script name, or --workerd-service-name)",
		set:   func(c *Config, v string) error { c.Workerd.ServiceNamePrefix = v; return nil }},
	{flag: "workerd-export-unsampled", env: "STWBRIDGE_WORKERD_EXPORT_UNSAMPLED", key: "workerd.export_unsampled", arg: "", boolean: true,
		usage: "export workerd invocations whose onset trace flags say an upstream did not sample them (dropped and counted by default)",
		set:   boolSetter(func(c *Config) *bool { return &c.Workerd.ExportUnsampled })},
	{flag: "log-format", env: "STWBRIDGE_LOG_FORMAT", key: "log.format", arg: "text|json",
		usage: "format of stwbridge's own logs (on stderr)",
		set: func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return fmt.Errorf("%q is not allowed: use text or json", v)
			}
			c.Log.Format = v
			return nil
		}},
	{flag: "log-level", env: "STWBRIDGE_LOG_LEVEL", key: "log.level", arg: "LEVEL",
		usage: "least severe log level written: debug, info, warn or error",
		set: func(c *Config, v string) error {
			if _, err := ParseLevel(v); err != nil {
				return err
			}
			c.Log.Level = v
			return nil
		}},
	{flag: "shutdown-timeout", env: "STWBRIDGE_SHUTDOWN_TIMEOUT", key: "shutdown_timeout", arg: "DURATION",
		usage: "on SIGTERM/SIGINT: how long to drain, export open spans as unfinished and flush before exiting",
		set:   durationSetter(func(c *Config) *Duration { return &c.ShutdownTimeout })},
	{flag: "data-dir", env: "STWBRIDGE_DATA_DIR", key: "persistence.data_dir", arg: "DIR",
		usage: "persistent queue: requests are on disk here before they are acknowledged; after a crash, what was not delivered is sent and open spans are restored",
		set:   func(c *Config, v string) error { c.Persistence.DataDir = v; return nil }},
	{flag: "memory-limit-mib", env: "STWBRIDGE_MEMORY_LIMIT_MIB", key: "memory_limiter.limit_mib", arg: "MIB",
		usage: "above this heap size, refuse requests as retryable (gRPC Unavailable with RetryInfo, HTTP 503 with Retry-After); 0: off",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%q is not allowed: use a whole number of MiB, 0 for off", v)
			}
			c.MemoryLimiter.LimitMiB = n
			return nil
		}},
	{flag: "bearer-token-file", env: "STWBRIDGE_BEARER_TOKEN_FILE", key: "receivers.auth.bearer_token_file", arg: "FILE",
		usage: "require \"authorization: Bearer <token>\" on both listeners, with the token read from FILE",
		set:   func(c *Config, v string) error { c.Receivers.Auth.BearerTokenFile = v; return nil }},
	{flag: "tls-cert-file", env: "STWBRIDGE_TLS_CERT_FILE", key: "receivers.otlp.{grpc,http}.tls.cert_file", arg: "FILE",
		usage: "serve both listeners over TLS with this PEM certificate (with --tls-key-file)",
		set: func(c *Config, v string) error {
			c.Receivers.OTLP.GRPC.TLS.CertFile, c.Receivers.OTLP.HTTP.TLS.CertFile = v, v
			return nil
		}},
	{flag: "tls-key-file", env: "STWBRIDGE_TLS_KEY_FILE", key: "receivers.otlp.{grpc,http}.tls.key_file", arg: "FILE",
		usage: "the PEM private key of --tls-cert-file",
		set: func(c *Config, v string) error {
			c.Receivers.OTLP.GRPC.TLS.KeyFile, c.Receivers.OTLP.HTTP.TLS.KeyFile = v, v
			return nil
		}},
	{flag: "tls-client-ca-file", env: "STWBRIDGE_TLS_CLIENT_CA_FILE", key: "receivers.otlp.{grpc,http}.tls.client_ca_file", arg: "FILE",
		usage: "mTLS: clients of both listeners must present a certificate signed by a CA in this PEM file",
		set: func(c *Config, v string) error {
			c.Receivers.OTLP.GRPC.TLS.ClientCAFile, c.Receivers.OTLP.HTTP.TLS.ClientCAFile = v, v
			return nil
		}},
}

func boolSetter(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not allowed: use true or false", v)
		}
		*field(c) = b
		return nil
	}
}

func durationSetter(field func(*Config) *Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration: use a number with a unit, such as 500ms, 10s or 5m", v)
		}
		if d <= 0 {
			return fmt.Errorf("%q must be positive", v)
		}
		*field(c) = Duration(d)
		return nil
	}
}

// flagValue records a flag's text; it is applied after the file and the environment.
type flagValue struct {
	opt     *option
	value   string
	set     bool
	boolean bool
}

func (f *flagValue) String() string { return f.value }
func (f *flagValue) Set(v string) error {
	if f.opt.set != nil {
		// Check now, so the flag package names the flag in its error.
		probe := Default()
		if err := f.opt.set(&probe, v); err != nil {
			return err
		}
	}
	f.value, f.set = v, true
	return nil
}
func (f *flagValue) IsBoolFlag() bool { return f.boolean }

// Load builds the configuration of `stwbridge serve` from its arguments (those after
// the command name), the environment (getenv, usually os.Getenv) and the config file
// they name. With --help it writes the usage to out and returns ErrHelp.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("stwbridge serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	values := make([]*flagValue, len(options))
	for i := range options {
		values[i] = &flagValue{opt: &options[i], boolean: options[i].boolean}
		fs.Var(values[i], options[i].flag, options[i].usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			Usage(out)
			return Config{}, ErrHelp
		}
		return Config{}, fmt.Errorf("%s (run `stwbridge --help` to see every flag)", strings.Replace(err.Error(), " -", " --", 1))
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: stwbridge serve takes only flags (run `stwbridge --help`)", fs.Arg(0))
	}

	c := Default()
	file := getenv("STWBRIDGE_CONFIG")
	if values[0].set {
		file = values[0].value
	}
	if file != "" {
		if err := LoadFile(&c, file); err != nil {
			return Config{}, err
		}
	}
	for i, o := range options {
		if o.set == nil {
			continue
		}
		if v, ok := lookup(getenv, o.env); ok {
			if err := o.set(&c, v); err != nil {
				return Config{}, fmt.Errorf("environment variable %s: %w", o.env, err)
			}
		}
		if values[i].set {
			if err := o.set(&c, values[i].value); err != nil {
				return Config{}, fmt.Errorf("flag --%s: %w", o.flag, err)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// lookup returns the variable's value; an empty variable counts as unset.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// Usage writes the help of `stwbridge serve`.
func Usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  stwbridge [serve] [flags]    run the forwarder
  stwbridge tail [flags]       live view of the spans passing through a running stwbridge
                               (stwbridge tail --help for its flags)

stwbridge receives OTel span lifecycle streams (STW over OTLP: stw.span_open,
stw.update_name, stw.span_end as OTLP logs), plain OTLP spans and logs, and workerd
tail events; it reassembles complete spans, exports spans whose producer died or
that stay open too long as unfinished, and forwards everything over OTLP/gRPC.

Flags (each also set by its environment variable; a flag beats its variable, which
beats the config file, which beats the default):
`)
	def := Default()
	defaults := map[string]string{
		"listen":                   def.Receivers.OTLP.GRPC.Endpoint,
		"http-listen":              def.Receivers.OTLP.HTTP.Endpoint,
		"forward":                  "empty: print to stdout",
		"print-open-after":         def.Stdout.OpenAfter.D().String(),
		"orphan-after":             def.Assembler.OrphanAfter.D().String(),
		"stream-timeout":           def.Assembler.StreamTimeout.D().String(),
		"forward-events":           "false",
		"workerd-service-name":     "empty: the script name, else unknown_service:workerd",
		"workerd-export-unsampled": "false",
		"log-format":               def.Log.Format,
		"log-level":                def.Log.Level,
		"shutdown-timeout":         def.ShutdownTimeout.D().String(),
		"data-dir":                 "empty: queue in memory only",
		"memory-limit-mib":         "0 (off)",
	}
	for _, o := range options {
		head := "  --" + o.flag
		if o.arg != "" {
			head += " " + o.arg
		}
		fmt.Fprintf(w, "%s\n      %s\n      env %s", head, o.usage, o.env)
		if o.key != "" {
			fmt.Fprintf(w, ", config key %s", o.key)
		}
		if d, ok := defaults[o.flag]; ok {
			fmt.Fprintf(w, ", default %s", d)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, `  --help
      this text

Config file keys (YAML; see docs/readme/forwarder.md for an example):
  receivers.otlp.grpc: endpoint, max_recv_msg_size_mib, tls (cert_file, key_file, client_ca_file),
                       max_connections, max_concurrent_streams, keepalive (server_parameters
                       (max_connection_idle, time, timeout), enforcement_policy (min_time,
                       permit_without_stream))
  receivers.otlp.http: endpoint, max_request_body_size, tls (cert_file, key_file, client_ca_file),
                       read_timeout, idle_timeout, max_connections, max_live_watchers
  receivers.auth: bearer_token_file, bearer_token_env
  exporter: endpoint, tls (ca_file, cert_file, key_file, server_name,
            insecure_skip_verify), headers, compression (gzip|none), timeout,
            max_request_bytes, retry_on_failure (enabled, initial_interval,
            max_interval, max_elapsed_time), sending_queue (queue_size,
            queue_bytes, num_consumers)
  assembler: orphan_after, stream_timeout, max_open_spans, reorder_window, sweep_interval,
             max_attributes_per_span, max_events_per_span, max_late_spans,
             max_late_bytes, forget_late_after
  pipeline: queue (max_events, max_bytes), batch (size, timeout)
  stdout: group_wait, open_after
  persistence: data_dir, max_bytes, checkpoint_interval
  memory_limiter: limit_mib, limit_percentage, check_interval, retry_after
  limits: max_attribute_value_length, max_open_spans_per_stream, max_attributes_bytes
  workerd: service_name, service_name_prefix, export_unsampled
  forward_events, log (format, level), shutdown_timeout
(docs/OPERATIONS.md: sizing, every limit and its default, metrics, alerts)
`)
}

// ParseLevel parses a log level name.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not a log level: use debug, info, warn or error", s)
}
