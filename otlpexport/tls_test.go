package otlpexport_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/otlpexport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

func tlsSink(t *testing.T, pki *otlpexport.TestPKI, requireClientCert bool) string {
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.ServerCert}, MinVersion: tls.VersionTLS12}
	if requireClientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = pki.CAPool
	}
	return exSink(t, grpc.Creds(credentials.NewTLS(cfg))).Addr()
}

func TestTLS(t *testing.T) {
	pki := otlpexport.NewTestPKI(t)
	noRetry := otlpexport.WithRetry(otlpexport.RetryConfig{})
	for _, tc := range []struct {
		name       string
		clientAuth bool
		opts       []otlpexport.Option
		ok         bool
	}{
		{"TLS", false, []otlpexport.Option{otlpexport.WithTLSConfig(&tls.Config{RootCAs: pki.CAPool})}, true},
		{"mTLS", true, []otlpexport.Option{otlpexport.WithTLSConfig(&tls.Config{
			RootCAs: pki.CAPool, Certificates: []tls.Certificate{pki.ClientCert},
		})}, true},
		{"mTLS without a client certificate", true, []otlpexport.Option{
			otlpexport.WithTLSConfig(&tls.Config{RootCAs: pki.CAPool}), noRetry,
		}, false},
		{"untrusted server", false, []otlpexport.Option{otlpexport.WithTLSConfig(nil), noRetry}, false},
		{"plaintext to a TLS server", false, []otlpexport.Option{otlpexport.WithInsecure(), noRetry}, false},
		{"WithInsecure then WithTLSConfig: TLS wins", false, []otlpexport.Option{
			otlpexport.WithInsecure(), otlpexport.WithTLSConfig(&tls.Config{RootCAs: pki.CAPool}),
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tlsSink(t, pki, tc.clientAuth)
			opts := append([]otlpexport.Option{
				otlpexport.WithEndpoint(addr), otlpexport.WithRetry(fastRetry),
				otlpexport.WithTimeout(5 * time.Second),
				otlpexport.WithLogger(slog.New(slog.NewTextHandler(&testWriter{t: t}, nil))),
			}, tc.opts...)
			e, err := otlpexport.New(context.Background(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Shutdown(context.Background())
			_ = e.ExportLogs(context.Background(), rawLogs("tls", 2, 0))
			flush(t, e)
			st := e.Stats()
			if tc.ok && st.Logs.Sent != 2 {
				t.Errorf("want success, stats %+v", st)
			}
			if !tc.ok && (st.Logs.Sent != 0 || st.Logs.Failed != 2) {
				t.Errorf("want failure, stats %+v", st)
			}
		})
	}
}

// TestNewFromEnvironment: New with no options sends where, and how, the OTel
// variables say: logs and traces to different receivers, TLS and mTLS from files.
func TestNewFromEnvironment(t *testing.T) {
	pki := otlpexport.NewTestPKI(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	logsSink := exSink(t)
	var in incoming
	tracesAddr := exSinkTLS(t, pki, &in)

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // overridden per signal below
	t.Setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://"+logsSink.Addr())
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://"+tracesAddr)
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", write("ca.pem", pki.CAPEM))
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", write("c.pem", pki.ClientCertPEM))
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", write("k.pem", pki.ClientKeyPEM))
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-signal=traces")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")

	e, err := otlpexport.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(context.Background())
	_ = e.ExportLogs(context.Background(), rawLogs("env", 3, 0))
	_ = e.ExportTraces(context.Background(), rawTraces("env", 2))
	flush(t, e)
	if st := e.Stats(); st.Logs.Sent != 3 || st.Traces.Sent != 2 {
		t.Fatalf("stats %+v", st)
	}
	if got := len(logsSink.LogRecords()); got != 3 {
		t.Errorf("logs receiver got %d records", got)
	}
	md, enc := in.last(t)
	if got := md.Get("x-signal"); len(got) != 1 || got[0] != "traces" {
		t.Errorf("traces headers: %v", md)
	}
	if enc != "gzip" {
		t.Errorf("traces compression %q, want gzip", enc)
	}

	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "never")
	if _, err := otlpexport.New(context.Background()); err == nil {
		t.Error("New accepted OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=never")
	}
}

// exSinkTLS is a sink that requires a client certificate and records metadata.
func exSinkTLS(t *testing.T, pki *otlpexport.TestPKI, in *incoming) string {
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pki.ServerCert}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.CAPool,
	}
	return exSink(t, grpc.Creds(credentials.NewTLS(cfg)), in.interceptor()).Addr()
}
