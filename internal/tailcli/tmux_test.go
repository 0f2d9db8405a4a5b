package tailcli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/testenv"
)

// mainEnv makes the test binary run `stwbridge tail` instead of the tests, so that the
// tmux test runs the real CLI in a real terminal without building another binary.
const mainEnv = "STWBRIDGE_TAILCLI_MAIN"

// screenEnv names a file where TestTmux writes the screen it captured mid-flight
// (used for docs/readme/tail.md).
const screenEnv = "STWBRIDGE_TAIL_SCREEN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// tmuxSession is a tmux server of its own (its own socket) running one pane.
type tmuxSession struct {
	t    *testing.T
	bin  string
	sock string
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(s.bin, append([]string{"-u", "-S", s.sock}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *tmuxSession) screen() string { return s.run("capture-pane", "-p", "-t", "tail") }

// waitScreen polls the screen until match finds something, and returns the match.
func (s *tmuxSession) waitScreen(what string, re *regexp.Regexp) []string {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		scr := s.screen()
		if m := re.FindStringSubmatch(scr); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %s (%s); last screen:\n%s", what, re, scr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *tmuxSession) waitGone(what, text string) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Contains(s.screen(), text) {
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen kept showing %s (%q):\n%s", what, text, s.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *tmuxSession) keys(keys ...string) {
	s.run(append([]string{"send-keys", "-t", "tail"}, keys...)...)
}

func TestTmux(t *testing.T) {
	bin := testenv.LookPath(t, "tmux")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h, srv := liveServer(t)

	dir := t.TempDir()
	conf := filepath.Join(dir, "tmux.conf")
	// remain-on-exit keeps the pane after the program ends, to read its exit status.
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g status off\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &tmuxSession{t: t, bin: bin, sock: filepath.Join(dir, "sock")}
	errFile := filepath.Join(dir, "stderr")
	// The shell writes tail's exit status to a file: tmux's own pane_dead_status is
	// sometimes never filled in once the pane has died.
	codeFile := filepath.Join(dir, "exit")
	command := fmt.Sprintf("env %s=1 '%s' --from %s 2>'%s'; echo $? >'%s'", mainEnv, exe, srv.URL, errFile, codeFile)
	s.run("-f", conf, "new-session", "-d", "-s", "tail", "-x", "110", "-y", "24", command)
	t.Cleanup(func() { exec.Command(bin, "-S", s.sock, "kill-server").Run() })

	s.waitScreen("the empty view", regexp.MustCompile(`waiting for spans`))
	waitFor(t, "tail to connect", func() bool { return h.Stats().Watchers == 1 })
	s.waitScreen("the live header", regexp.MustCompile(`stwbridge tail · http://127\.0\.0\.1:\d+ · live · 0 traces, 0 open`))

	// An open span, with its elapsed time ticking.
	start := time.Now().Add(-time.Second)
	root, child, db := trace.SpanID{0: 0xaa, 7: 1}, trace.SpanID{0: 0xaa, 7: 2}, trace.SpanID{0: 0xaa, 7: 3}
	h.Consume(t.Context(), []bridge.Event{bOpen(root, trace.SpanID{}, "GET", start)})
	m := s.waitScreen("the open span", regexp.MustCompile(`└── ● GET  (\d+\.\d)s`))
	first, _ := strconv.ParseFloat(m[1], 64)
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := regexp.MustCompile(`● GET  (\d+\.\d)s`).FindStringSubmatch(s.screen())
		if m != nil {
			if v, _ := strconv.ParseFloat(m[1], 64); v > first {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the elapsed time did not tick past %.1fs:\n%s", first, s.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Its rename, as it happens, beside the old name.
	h.Consume(t.Context(), []bridge.Event{bRename(root, "GET /users/:id")})
	s.waitScreen("the rename", regexp.MustCompile(`└── ● GET /users/:id ← GET  \d+\.\ds`))

	// Children, a log under one, an ended child; the screen in flight.
	h.Consume(t.Context(), []bridge.Event{
		bOpen(child, root, "auth.check", start.Add(20*time.Millisecond)),
		bEnd(child, start.Add(65*time.Millisecond), codes.Ok),
		bOpen(db, root, "SELECT users", start.Add(70*time.Millisecond)),
		{TraceID: tidA, SpanID: db, StreamID: streamA, Time: time.Now(), Resource: res,
			Body: &bridge.Log{Level: "warn", Message: "slow query: 3 retries"}},
		{TraceID: tidA, SpanID: db, StreamID: streamA, Time: time.Now(), Resource: res,
			Body: &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("db.rows", 1)}}},
	})
	s.waitScreen("the children", regexp.MustCompile(`(?s)✓ auth\.check  45\.0ms  ok.*● SELECT users  \d+\.\ds.*log warn: slow query`))
	if path := os.Getenv(screenEnv); path != "" {
		time.Sleep(300 * time.Millisecond) // let the clock tick for a nicer picture
		if err := os.WriteFile(path, []byte(s.screen()), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Pause freezes the view; resume brings what came meanwhile.
	s.keys("p")
	s.waitScreen("the pause mark", regexp.MustCompile(`PAUSED \(0 waiting\)`))
	h.Consume(t.Context(), []bridge.Event{bEnd(db, start.Add(1500*time.Millisecond), codes.Error)})
	s.waitScreen("the queued event", regexp.MustCompile(`PAUSED \(1 waiting\)`))
	if strings.Contains(s.screen(), "✗ SELECT users") {
		t.Fatalf("the paused view changed:\n%s", s.screen())
	}
	s.keys("p")
	s.waitScreen("the resumed view", regexp.MustCompile(`✗ SELECT users  1\.43s  error`))

	// Filter: / text enter; esc clears it.
	s.keys("/", "z", "z", "z")
	s.waitScreen("the filter prompt", regexp.MustCompile(`filter: zzz`))
	s.keys("Enter")
	s.waitGone("the filtered-out trace", "GET /users/:id")
	s.keys("Escape")
	s.waitScreen("the trace again", regexp.MustCompile(`GET /users/:id`))

	// The end of the root span: duration and status.
	h.Consume(t.Context(), []bridge.Event{bEnd(root, start.Add(1600*time.Millisecond), codes.Ok)})
	s.waitScreen("the ended span", regexp.MustCompile(`└── ✓ GET /users/:id ← GET  1\.60s  ok`))
	s.waitScreen("the trace summary", regexp.MustCompile(`trace 4b00000000000000 · checkout · 3 spans\s`))

	// q quits with status 0.
	s.keys("q")
	deadline = time.Now().Add(20 * time.Second)
	for {
		code, err := os.ReadFile(codeFile)
		if err == nil && strings.HasSuffix(string(code), "\n") {
			if st := strings.TrimSpace(string(code)); st != "0" {
				stderr, _ := os.ReadFile(errFile)
				t.Fatalf("tail ended with status %s; stderr:\n%s", st, stderr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail did not quit on q:\n%s", s.screen())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "the watcher to leave", func() bool { return h.Stats().Watchers == 0 })
}
