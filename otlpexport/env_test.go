package otlpexport

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnvResolution is the table of how options and OTEL_EXPORTER_OTLP_* variables
// combine, as the OTel exporters read them.
func TestEnvResolution(t *testing.T) {
	type want struct {
		endpoint    string
		insecure    bool
		headers     map[string]string
		compression string
		timeout     time.Duration
	}
	def := want{endpoint: "127.0.0.1:4317", insecure: true, compression: "none", timeout: DefaultTimeout}
	with := func(f func(*want)) want { w := def; f(&w); return w }
	for _, tc := range []struct {
		name           string
		env            map[string]string
		opts           []Option
		logs, traces   want
		wantErr        string // substring; the error must name the variable
		tracesSameConn bool
	}{
		{name: "defaults", logs: def, traces: def, tracesSameConn: true},
		{
			name: "generic http URL",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
			logs: with(func(w *want) { w.endpoint = "collector:4317" }), traces: with(func(w *want) { w.endpoint = "collector:4317" }),
			tracesSameConn: true,
		},
		{
			name: "https URL without port means TLS on 4317",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example/"},
			logs: with(func(w *want) { w.endpoint = "collector.example:4317"; w.insecure = false }),
			traces: with(func(w *want) {
				w.endpoint = "collector.example:4317"
				w.insecure = false
			}),
			tracesSameConn: true,
		},
		{
			name: "host:port is TLS unless INSECURE",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:1234", "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "TRUE"},
			logs: with(func(w *want) { w.endpoint = "c:1234"; w.insecure = false }),
			traces: with(func(w *want) {
				w.endpoint = "c:1234"
			}),
		},
		{
			name: "INSECURE does not override a URL scheme",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:1", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
			logs: with(func(w *want) { w.endpoint = "c:1"; w.insecure = false }),
			traces: with(func(w *want) {
				w.endpoint = "c:1"
				w.insecure = false
			}),
			tracesSameConn: true,
		},
		{
			name: "signal variables win over generic ones",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":         "http://generic:1",
				"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT":    "http://logs:2",
				"OTEL_EXPORTER_OTLP_HEADERS":          "a=1,b=2",
				"OTEL_EXPORTER_OTLP_TRACES_HEADERS":   "c=3",
				"OTEL_EXPORTER_OTLP_COMPRESSION":      "gzip",
				"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "none",
				"OTEL_EXPORTER_OTLP_TIMEOUT":          "2500",
				"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":   "100",
			},
			logs: want{endpoint: "logs:2", insecure: true, headers: map[string]string{"a": "1", "b": "2"}, compression: "none", timeout: 2500 * time.Millisecond},
			traces: want{endpoint: "generic:1", insecure: true, headers: map[string]string{"c": "3"},
				compression: "gzip", timeout: 100 * time.Millisecond},
		},
		{
			name: "headers: spaces, percent-encoding, empty entries, upper-case keys",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": " Authorization = Basic%20YWxhZGRpbg== , , x-k=a%2Cb"},
			logs: with(func(w *want) { w.headers = map[string]string{"authorization": "Basic YWxhZGRpbg==", "x-k": "a,b"} }),
			traces: with(func(w *want) {
				w.headers = map[string]string{"authorization": "Basic YWxhZGRpbg==", "x-k": "a,b"}
			}),
			tracesSameConn: true,
		},
		{
			name: "options win, and bad variables they override are ignored",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":    "::bad::",
				"OTEL_EXPORTER_OTLP_HEADERS":     "nonsense",
				"OTEL_EXPORTER_OTLP_COMPRESSION": "brotli",
				"OTEL_EXPORTER_OTLP_TIMEOUT":     "soon",
				"OTEL_EXPORTER_OTLP_INSECURE":    "maybe",
				"OTEL_EXPORTER_OTLP_CERTIFICATE": "/does/not/exist",
			},
			opts: []Option{WithEndpoint("x:9"), WithInsecure(), WithHeaders(map[string]string{"h": "v"}),
				WithCompression("gzip"), WithTimeout(time.Second)},
			logs:           want{endpoint: "x:9", insecure: true, headers: map[string]string{"h": "v"}, compression: "gzip", timeout: time.Second},
			traces:         want{endpoint: "x:9", insecure: true, headers: map[string]string{"h": "v"}, compression: "gzip", timeout: time.Second},
			tracesSameConn: true,
		},
		{
			name: "WithEndpoint URL sets plaintext",
			opts: []Option{WithEndpoint("http://[::1]:4317")},
			logs: with(func(w *want) { w.endpoint = "[::1]:4317" }), traces: with(func(w *want) { w.endpoint = "[::1]:4317" }),
			tracesSameConn: true,
		},
		{name: "bad endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector"}, wantErr: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{name: "bad scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://c:1"}, wantErr: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "bad port", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:99999"}, wantErr: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "bad insecure", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:1", "OTEL_EXPORTER_OTLP_LOGS_INSECURE": "yes"}, wantErr: "OTEL_EXPORTER_OTLP_LOGS_INSECURE"},
		{name: "bad headers", env: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b"}, wantErr: "OTEL_EXPORTER_OTLP_HEADERS"},
		{name: "bad header encoding", env: map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "a=%zz"}, wantErr: "OTEL_EXPORTER_OTLP_HEADERS"},
		{name: "bad compression", env: map[string]string{"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "zstd"}, wantErr: "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION"},
		{name: "bad timeout", env: map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, wantErr: "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{name: "negative timeout", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "-5"}, wantErr: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"},
		{name: "missing CA file", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:1", "OTEL_EXPORTER_OTLP_CERTIFICATE": "/does/not/exist.pem"}, wantErr: "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{name: "client certificate without key", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:1", "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE": "/x.pem"}, wantErr: "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE"},
		{name: "client key without certificate", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:1", "OTEL_EXPORTER_OTLP_CLIENT_KEY": "/x.pem"}, wantErr: "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newConfig(tc.opts)
			if len(cfg.errs) > 0 {
				t.Fatal(cfg.errs)
			}
			logs, traces, err := resolve(cfg, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				got  signalConfig
				want want
			}{{logs, tc.logs}, {traces, tc.traces}} {
				g := want{c.got.endpoint, c.got.insecure, c.got.headers, c.got.compression, c.got.timeout}
				if g.endpoint != c.want.endpoint || g.insecure != c.want.insecure || g.compression != c.want.compression ||
					g.timeout != c.want.timeout || len(g.headers) != len(c.want.headers) {
					t.Errorf("%s: got %+v, want %+v", c.got.signal, g, c.want)
				}
				for k, v := range c.want.headers {
					if g.headers[k] != v {
						t.Errorf("%s: header %s=%q, want %q", c.got.signal, k, g.headers[k], v)
					}
				}
			}
			if (logs.connKey == traces.connKey) != tc.tracesSameConn {
				t.Errorf("shared connection: %v, want %v (%s / %s)", logs.connKey == traces.connKey, tc.tracesSameConn, logs.connKey, traces.connKey)
			}
		})
	}
}

// TestEnvCertificates reads the CA, client certificate and key from files.
func TestEnvCertificates(t *testing.T) {
	pki := NewTestPKI(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := write("ca.pem", pki.CAPEM)
	cert := write("client.pem", pki.ClientCertPEM)
	key := write("client-key.pem", pki.ClientKeyPEM)
	junk := write("junk.pem", []byte("not a certificate"))

	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":                  "https://127.0.0.1:4317",
		"OTEL_EXPORTER_OTLP_CERTIFICATE":               ca,
		"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": cert,
		"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY":         key,
	}
	logs, traces, err := resolve(newConfig(nil), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	check := func(sc signalConfig, clientCerts int) {
		t.Helper()
		if sc.insecure || sc.tls == nil || sc.tls.RootCAs == nil || len(sc.tls.Certificates) != clientCerts || sc.tls.MinVersion < tls.VersionTLS12 {
			t.Errorf("%s: TLS configuration %+v", sc.signal, sc.tls)
		}
	}
	check(logs, 0)
	check(traces, 1)
	if logs.connKey == traces.connKey {
		t.Error("logs and traces share a connection though their client certificates differ")
	}

	env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = junk
	if _, _, err := resolve(newConfig(nil), func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_CERTIFICATE") {
		t.Errorf("a CA file with no certificate: %v", err)
	}
	env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = ca
	env["OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"] = junk
	if _, _, err := resolve(newConfig(nil), func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY") {
		t.Errorf("a bad client key: %v", err)
	}
}

// FuzzParseHeaders: any header list parses or fails cleanly, and what parses has no
// empty key.
func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{"a=1,b=2", " Authorization = Basic%20x , ,k=a%2Cb", "a", "=1", "a=%zz", "a==b,c=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHeaders(s)
		if err != nil {
			return
		}
		for k := range h {
			if k == "" {
				t.Fatalf("%q parsed to an empty key", s)
			}
		}
	})
}

// FuzzParseEndpoint: any endpoint parses or fails cleanly; what parses is host:port.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"127.0.0.1:4317", "http://c:1", "https://c/", "https://[::1]:443/x", "c", "ftp://x:1", "http://:1", "c:99999", "", "http://]", "a b:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hp, scheme, err := parseEndpoint(s)
		if err != nil {
			return
		}
		if _, _, err := net.SplitHostPort(hp); err != nil {
			t.Fatalf("%q parsed to %q, not host:port: %v", s, hp, err)
		}
		if scheme != "" && scheme != "http" && scheme != "https" {
			t.Fatalf("%q: scheme %q", s, scheme)
		}
	})
}
