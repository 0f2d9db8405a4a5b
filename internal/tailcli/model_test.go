package tailcli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/stwbridge/stwbridge/internal/live"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const (
	traceA = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceB = "0af7651916cd43dd8448eb211c80319c"
)

func ts(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }

func open(trace, span, parent, name string, at time.Duration) live.Event {
	return live.Event{Type: "span_open", TraceID: trace, SpanID: span, ParentSpanID: parent, Name: name,
		Service: "checkout", Time: ts(at), Start: ts(at)}
}

func rename(trace, span, name, old string) live.Event {
	return live.Event{Type: "update_name", TraceID: trace, SpanID: span, Name: name, OldName: old, Service: "checkout"}
}

func end(trace, span string, at, dur time.Duration, code string) live.Event {
	return live.Event{Type: "span_end", TraceID: trace, SpanID: span, Time: ts(at), Service: "checkout",
		DurationNS: int64(dur), Status: &live.Status{Code: code}}
}

// screen renders the state without colours.
func screen(s *state, now time.Time, filter string) string {
	return ansi.Strip(strings.Join(s.renderTraces(now, filter, 0), "\n"))
}

func TestModelOpenRenameEnd(t *testing.T) {
	s := newState()
	apply := func(e live.Event) { s.apply(&e, t0) }

	apply(open(traceA, "00f067aa0ba902b7", "", "GET", 0))
	apply(open(traceA, "1111111111111111", "00f067aa0ba902b7", "SELECT users", 10*time.Millisecond))
	got := screen(s, t0.Add(1500*time.Millisecond), "")
	want := `trace 4bf92f3577b34da6 · checkout · 2 spans, 2 open
└── ● GET  1.5s
    └── ● SELECT users  1.5s`
	if got != want {
		t.Fatalf("open:\n%s\nwant:\n%s", got, want)
	}

	apply(rename(traceA, "00f067aa0ba902b7", "GET /users/:id", "GET"))
	apply(live.Event{Type: "log", TraceID: traceA, SpanID: "1111111111111111", Time: ts(20 * time.Millisecond), Level: "info", Message: "cache miss"})
	apply(end(traceA, "1111111111111111", 42*time.Millisecond, 32*time.Millisecond, live.StatusOK))
	got = screen(s, t0.Add(2*time.Second), "")
	want = `trace 4bf92f3577b34da6 · checkout · 2 spans, 1 open
└── ● GET /users/:id ← GET  2.0s
    └── ✓ SELECT users  32.0ms  ok
        └── log info: cache miss`
	if got != want {
		t.Fatalf("rename:\n%s\nwant:\n%s", got, want)
	}

	e := end(traceA, "00f067aa0ba902b7", 2500*time.Millisecond, 2500*time.Millisecond, live.StatusError)
	e.Status.Description = "upstream timeout"
	apply(e)
	got = screen(s, t0.Add(3*time.Second), "")
	want = `trace 4bf92f3577b34da6 · checkout · 2 spans
└── ✗ GET /users/:id ← GET  2.50s  error: upstream timeout
    └── ✓ SELECT users  32.0ms  ok
        └── log info: cache miss`
	if got != want {
		t.Fatalf("end:\n%s\nwant:\n%s", got, want)
	}

	// A finished trace stays a while, then goes.
	s.prune(t0.Add(keepFinished / 2))
	if len(s.traces) != 1 {
		t.Fatal("finished trace pruned too early")
	}
	s.prune(t0.Add(keepFinished + time.Second))
	if len(s.traces) != 0 {
		t.Fatal("finished trace not pruned")
	}
}

func TestModelUnfinishedExceptionsAndOrphans(t *testing.T) {
	s := newState()
	apply := func(e live.Event) { s.apply(&e, t0) }
	// A span_end alone (as --status filters send) is enough to draw a span.
	e := live.Event{Type: "span_end", TraceID: traceB, SpanID: "2222222222222222", ParentSpanID: "9999999999999999",
		Name: "charge", Service: "billing", Time: ts(3 * time.Second), Start: ts(0), DurationNS: int64(3 * time.Second),
		Unfinished: true, Status: &live.Status{Code: live.StatusError},
		Events: []live.SpanEvent{{Name: "exception", Time: ts(time.Second), Attributes: map[string]any{"exception.type": "CardError", "exception.message": "declined"}}}}
	apply(e)
	apply(live.Event{Type: "exception", TraceID: traceB, SpanID: "3333333333333333", Name: "worker", Service: "billing",
		Time: ts(time.Second), Exception: &live.Exception{Name: "TypeError", Message: "x is undefined\x1b[31m"}})
	got := screen(s, t0.Add(4*time.Second), "")
	want := `trace 0af7651916cd43dd · billing · 2 spans, 1 open
├── ✗ charge  unfinished after 3.00s
│   └── exception CardError: declined
└── ● worker  …
    └── exception TypeError: x is undefined[31m`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(strings.Join(s.renderTraces(t0, "", 0), ""), "undefined\x1b") {
		t.Fatal("a producer's escape code reached the screen")
	}
}

func TestModelFilterAndBounds(t *testing.T) {
	s := newState()
	for i := range maxTraces + 10 {
		e := open(fmt.Sprintf("%032x", i+1), "00f067aa0ba902b7", "", fmt.Sprintf("op-%d", i), 0)
		s.apply(&e, t0)
		if i < 5 { // the first five finish: they go first
			e := end(fmt.Sprintf("%032x", i+1), "00f067aa0ba902b7", time.Second, time.Second, live.StatusOK)
			s.apply(&e, t0)
		}
	}
	if len(s.traces) != maxTraces || s.forgot != 10 {
		t.Fatalf("%d traces, forgot %d; want %d, 10", len(s.traces), s.forgot, maxTraces)
	}
	if s.traces[fmt.Sprintf("%032x", 1)] != nil || s.traces[fmt.Sprintf("%032x", 6)] != nil || s.traces[fmt.Sprintf("%032x", 12)] == nil {
		t.Fatal("evicted the wrong traces: want the finished ones, then the oldest open ones")
	}
	got := screen(s, t0, "OP-199")
	if !strings.Contains(got, "op-199") || strings.Contains(got, "op-198") {
		t.Fatalf("filter: %s", got)
	}

	big := newState()
	for i := range maxSpansPerTrace + 3 {
		e := open(traceA, fmt.Sprintf("%016x", i+1), "", "s", 0)
		big.apply(&e, t0)
	}
	if tr := big.traces[traceA]; len(tr.spans) != maxSpansPerTrace || tr.hidden != 3 {
		t.Fatalf("spans %d hidden %d", len(tr.spans), tr.hidden)
	}
}

func TestTUIKeys(t *testing.T) {
	m := newModel("http://x", t0)
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 20})
	batch := func(es ...live.Event) eventsMsg {
		out := make(eventsMsg, len(es))
		for i := range es {
			out[i] = item{ev: es[i]}
		}
		return out
	}
	m.Update(connMsg{connected: true})
	m.Update(batch(open(traceA, "00f067aa0ba902b7", "", "GET", 0)))
	press := func(k string) tea.Cmd {
		r := []rune(k)
		_, cmd := m.Update(tea.KeyPressMsg{Code: r[0], Text: k})
		return cmd
	}
	press("p")
	if !m.paused {
		t.Fatal("p did not pause")
	}
	m.Update(batch(rename(traceA, "00f067aa0ba902b7", "GET /x", "GET")))
	if v := ansi.Strip(m.render()); strings.Contains(v, "GET /x") || !strings.Contains(v, "PAUSED (1 waiting)") {
		t.Fatalf("paused view changed or lacks the pause mark:\n%s", v)
	}
	press("p")
	if v := ansi.Strip(m.render()); !strings.Contains(v, "GET /x ← GET") || strings.Contains(v, "PAUSED") {
		t.Fatalf("resumed view:\n%s", v)
	}

	m.Update(batch(open(traceB, "2222222222222222", "", "charge", 0)))
	press("/")
	for _, k := range "charg" {
		press(string(k))
	}
	m.Update(tea.KeyPressMsg{Code: tea.KeyBackspace})
	press("r")
	if v := ansi.Strip(m.render()); !strings.Contains(v, "filter: charr") {
		t.Fatalf("prompt:\n%s", v)
	}
	m.Update(tea.KeyPressMsg{Code: tea.KeyBackspace})
	press("g")
	m.Update(tea.KeyPressMsg{Code: tea.KeyEnter})
	v := ansi.Strip(m.render())
	if m.filter != "charg" || !strings.Contains(v, "charge") || strings.Contains(v, "GET /x") {
		t.Fatalf("filter %q:\n%s", m.filter, v)
	}
	m.Update(tea.KeyPressMsg{Code: tea.KeyEscape})
	if m.filter != "" {
		t.Fatal("esc did not clear the filter")
	}
	if lines := strings.Split(m.render(), "\n"); len(lines) > 20 {
		t.Fatalf("view of %d lines in a 20-line window", len(lines))
	}
	cmd := press("q")
	if cmd == nil {
		t.Fatal("q returned no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("q did not quit")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Microsecond:   "850µs",
		12300 * time.Microsecond: "12.3ms",
		340 * time.Millisecond:   "340ms",
		1250 * time.Millisecond:  "1.25s",
		123 * time.Second:        "2m03s",
		3720 * time.Second:       "1h02m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestModelOutcome(t *testing.T) {
	s := newState()
	apply := func(e live.Event) { s.apply(&e, t0) }
	// A local stream's outcome after its root span ended with an error changes nothing.
	apply(open(traceA, "00f067aa0ba902b7", "", "GET", 0))
	apply(end(traceA, "00f067aa0ba902b7", time.Second, time.Second, live.StatusError))
	apply(live.Event{Type: "outcome", TraceID: traceA, SpanID: "00f067aa0ba902b7", Outcome: "ok", Time: ts(time.Second)})
	// An outcome of nothing in view adds nothing.
	apply(live.Event{Type: "outcome", TraceID: traceB, SpanID: "2222222222222222", Outcome: "ok"})
	// An invocation: onset, then outcome.
	apply(live.Event{Type: "onset", TraceID: traceB, SpanID: "3333333333333333", Name: "fetch GET /", Time: ts(0), Start: ts(0)})
	apply(live.Event{Type: "outcome", TraceID: traceB, SpanID: "3333333333333333", Name: "fetch GET /", Outcome: "exception",
		Time: ts(2 * time.Second), DurationNS: int64(2 * time.Second)})
	got := screen(s, t0, "")
	want := `trace 4bf92f3577b34da6 · checkout · 1 span
└── ✗ GET  1.00s  error
trace 0af7651916cd43dd · 1 span
└── ✗ fetch GET /  2.00s  error: exception`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderBudgetKeepsTheNewest(t *testing.T) {
	s := newState()
	for i := range 10 {
		e := open(fmt.Sprintf("%032x", i+1), "00f067aa0ba902b7", "", fmt.Sprintf("op-%d", i), 0)
		s.apply(&e, t0)
	}
	got := ansi.Strip(strings.Join(s.renderTraces(t0, "", 4), "\n"))
	if strings.Contains(got, "op-7") || !strings.Contains(got, "op-8  0.0s\n") || !strings.HasSuffix(got, "op-9  0.0s") {
		t.Fatalf("budget 4 lines:\n%s", got)
	}
}
