package auth

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stwbridge/stwbridge/internal/auth/authtest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serveTLS serves the gRPC health service with cfg on loopback.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func check(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	return err
}

func TestServerConfigTLS(t *testing.T) {
	dir := t.TempDir()
	pki := authtest.NewPKI(t, dir, "a")
	cfg, err := TLSFiles{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.NoClientCert {
		t.Fatalf("config %+v", cfg)
	}
	addr := serveTLS(t, cfg)
	if err := check(t, addr, &tls.Config{RootCAs: pki.CAPool}); err != nil {
		t.Fatalf("TLS client trusting the CA: %v", err)
	}
	other := authtest.NewPKI(t, dir, "b")
	if err := check(t, addr, &tls.Config{RootCAs: other.CAPool}); err == nil {
		t.Fatal("client trusting another CA connected")
	}
}

func TestServerConfigMTLS(t *testing.T) {
	dir := t.TempDir()
	pki := authtest.NewPKI(t, dir, "a")
	other := authtest.NewPKI(t, dir, "b")
	cfg, err := TLSFiles{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("ClientAuth %v", cfg.ClientAuth)
	}
	addr := serveTLS(t, cfg)
	if err := check(t, addr, &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{pki.ClientCert}}); err != nil {
		t.Fatalf("client with a certificate from the client CA: %v", err)
	}
	if err := check(t, addr, &tls.Config{RootCAs: pki.CAPool}); err == nil {
		t.Fatal("client without a certificate connected")
	}
	if err := check(t, addr, &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{other.ClientCert}}); err == nil {
		t.Fatal("client with a certificate from another CA connected")
	}
}

func TestServerConfigErrors(t *testing.T) {
	dir := t.TempDir()
	pki := authtest.NewPKI(t, dir, "a")
	if cfg, err := (TLSFiles{}).ServerConfig(); cfg != nil || err != nil {
		t.Fatalf("no files: %v %v, want nil nil", cfg, err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for name, f := range map[string]TLSFiles{
		"cert only":      {CertFile: pki.ServerCertFile},
		"key only":       {KeyFile: pki.ServerKeyFile},
		"ca only":        {ClientCAFile: pki.CAFile},
		"missing cert":   {CertFile: filepath.Join(dir, "none"), KeyFile: pki.ServerKeyFile},
		"key mismatch":   {CertFile: pki.ServerCertFile, KeyFile: pki.ClientKeyFile},
		"missing ca":     {CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: filepath.Join(dir, "none")},
		"ca without PEM": {CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: notPEM},
	} {
		if _, err := f.ServerConfig(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestClientConfig(t *testing.T) {
	dir := t.TempDir()
	pki := authtest.NewPKI(t, dir, "a")
	srv, err := TLSFiles{CertFile: pki.ServerCertFile, KeyFile: pki.ServerKeyFile, ClientCAFile: pki.CAFile}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, srv)
	cfg, err := ClientTLSFiles{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.InsecureSkipVerify {
		t.Fatalf("config %+v", cfg)
	}
	if err := check(t, addr, cfg); err != nil {
		t.Fatalf("mTLS client from files: %v", err)
	}
	// The server's certificate is for 127.0.0.1 and localhost: another name fails.
	named, err := ClientTLSFiles{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile, ServerName: "elsewhere"}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := check(t, addr, named); err == nil {
		t.Fatal("client checking another server name connected")
	}
	skip, err := ClientTLSFiles{CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile, InsecureSkipVerify: true}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := check(t, addr, skip); err != nil {
		t.Fatalf("client skipping verification: %v", err)
	}
	if cfg, err := (ClientTLSFiles{}).ClientConfig(); err != nil || cfg.RootCAs != nil || cfg.Certificates != nil {
		t.Fatalf("no files: %+v %v, want the system roots and no certificate", cfg, err)
	}
}

func TestClientConfigErrors(t *testing.T) {
	dir := t.TempDir()
	pki := authtest.NewPKI(t, dir, "a")
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for name, f := range map[string]ClientTLSFiles{
		"cert only":      {CertFile: pki.ClientCertFile},
		"key only":       {KeyFile: pki.ClientKeyFile},
		"key mismatch":   {CertFile: pki.ClientCertFile, KeyFile: pki.ServerKeyFile},
		"missing ca":     {CAFile: filepath.Join(dir, "none")},
		"ca without PEM": {CAFile: notPEM},
	} {
		if _, err := f.ClientConfig(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
