// Package testenv finds the tools that tests use (the Collector, workerd, tmux) and
// decides what a test does when one is missing: under `make test`
// (STWBRIDGE_REQUIRE_TOOLS=1) it fails, elsewhere it skips with the command to run.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot returns the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// ToolsDir returns where scripts/tools.sh installs tools.
func ToolsDir() string {
	if d := os.Getenv("STWBRIDGE_TOOLS"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), ".tools")
}

// Require fails (under make test) or skips the test when path does not exist.
func Require(t testing.TB, path, what string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, what+" not found at "+path+"; run `make tools`")
	}
	return path
}

// Missing fails the test under `make test` and skips it elsewhere.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("STWBRIDGE_REQUIRE_TOOLS") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// LookPath returns the path of a command on PATH, failing or skipping when absent.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found on PATH; run `make tools`")
	}
	return p
}

// OtelcolPath returns the Collector built by `make tools`.
func OtelcolPath(t testing.TB) string {
	t.Helper()
	return Require(t, filepath.Join(ToolsDir(), "bin", "otelcol"), "the OpenTelemetry Collector")
}
