package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/internal/auth/authtest"
	"github.com/stwbridge/stwbridge/internal/testenv"
)

// TestHealth: `stwbridge health` exits 0 against a running stwbridge and 1, saying
// why, when nothing answers.
func TestHealth(t *testing.T) {
	b := startBridge(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command(binary, "health", "--http-listen", b.http).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health against a running stwbridge: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := exec.Command(binary, "health", "--http-listen", testenv.FreeAddr(t), "--timeout", "1s").CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "stwbridge health:") {
		t.Errorf("health with nothing listening: exit %d, output %q; want exit 1 and the reason", code, out)
	}
}

// TestHealthTLS: against a TLS listener, `stwbridge health --tls` answers 0 and plain
// HTTP does not.
func TestHealthTLS(t *testing.T) {
	pki := authtest.NewPKI(t, t.TempDir(), "127.0.0.1")
	httpAddr := testenv.FreeAddr(t)
	cmd := exec.Command(binary, "--listen", testenv.FreeAddr(t), "--http-listen", httpAddr,
		"--tls-cert-file", pki.ServerCertFile, "--tls-key-file", pki.ServerKeyFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command(binary, "health", "--tls", "--http-listen", httpAddr).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health --tls against a TLS listener: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := exec.Command(binary, "health", "--http-listen", httpAddr).Run(); exitCode(err) != 1 {
		t.Errorf("plain HTTP health against a TLS listener: %v, want exit 1", err)
	}
}

func TestLocalAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:4318":   "127.0.0.1:4318",
		":4318":          "127.0.0.1:4318",
		"[::]:4318":      "127.0.0.1:4318",
		"127.0.0.1:9":    "127.0.0.1:9",
		"bridge.lan:443": "bridge.lan:443",
	} {
		if got := localAddr(in); got != want {
			t.Errorf("localAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	return -1
}
