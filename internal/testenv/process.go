package testenv

import (
	"bufio"
	"io"
	"os/exec"
	"testing"
	"time"
)

// StartUntilLine starts cmd and waits until it prints the line want on its standard
// output, failing t when it does not within timeout. The rest of that output is read
// and discarded, so cmd never blocks on a full pipe; cmd is killed when t ends.
func StartUntilLine(t testing.TB, cmd *exec.Cmd, want string, timeout time.Duration) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == want {
				close(seen)
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case <-seen:
	case <-time.After(timeout):
		t.Fatalf("%s did not print %q within %v", cmd.Path, want, timeout)
	}
}
