package treeprint

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
)

func TestNextMark(t *testing.T) {
	cases := []struct{ after, prev, want time.Duration }{
		{time.Second, 0, time.Second},
		{time.Second, time.Second, 10 * time.Second},
		{time.Second, 10 * time.Second, time.Minute},
		{time.Second, time.Minute, 10 * time.Minute},
		{time.Second, 10 * time.Minute, 20 * time.Minute},
		{30 * time.Second, 30 * time.Second, time.Minute},
		{2 * time.Minute, 2 * time.Minute, 10 * time.Minute},
	}
	for _, c := range cases {
		if got := nextMark(c.after, c.prev); got != c.want {
			t.Errorf("nextMark(%v, %v) = %v, want %v", c.after, c.prev, got, c.want)
		}
	}
}

func (c *clock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// waitLines waits until out holds n "still open" lines, and checks it holds no more.
func waitLines(t *testing.T, out *testenv.SyncBuffer, n int) []string {
	t.Helper()
	var lines []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		lines = lines[:0]
		for l := range strings.SplitSeq(out.String(), "\n") {
			if strings.HasPrefix(l, "still open") {
				lines = append(lines, l)
			}
		}
		if len(lines) >= n || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // several ticks: a line too many would show
	if got := strings.Count(out.String(), "still open"); got != n {
		t.Fatalf("%d \"still open\" lines, want %d:\n%s", got, n, out.String())
	}
	return lines
}

func TestStillOpenReportedAtMarks(t *testing.T) {
	clk := &clock{now: t0}
	out := &testenv.SyncBuffer{}
	p := New(out, WithGroupWait(20*time.Millisecond), withClock(clk.Now))
	defer p.Shutdown(context.Background())
	res := resource.NewSchemaless(attribute.String("service.name", "stwdemo"))
	ev := func(id byte, at time.Duration, b bridge.Body) bridge.Event {
		return bridge.Event{TraceID: tid(1), SpanID: sid(id), Time: t0.Add(at), Resource: res, Body: b}
	}
	p.ObserveEvents([]bridge.Event{
		ev(1, 0, &bridge.SpanOpen{Name: "GET"}),
		ev(1, 0, &bridge.UpdateName{Name: "GET /slow"}),
		ev(2, 0, &bridge.SpanOpen{Name: "quick", Parent: sid(1)}),
		ev(2, 300*time.Millisecond, &bridge.SpanEndData{}),
	})

	clk.set(t0.Add(900 * time.Millisecond))
	waitLines(t, out, 0)
	clk.set(t0.Add(1200 * time.Millisecond))
	lines := waitLines(t, out, 1)
	want := "still open  GET /slow  open 1.20s  service=stwdemo  trace=" + tid(1).String() + " span=" + sid(1).String()
	if lines[0] != want {
		t.Errorf("got  %q\nwant %q", lines[0], want)
	}
	clk.set(t0.Add(9 * time.Second))
	waitLines(t, out, 1)
	clk.set(t0.Add(10 * time.Second))
	if l := waitLines(t, out, 2); !strings.Contains(l[1], "open 10.0s") {
		t.Errorf("second report %q, want open 10.0s", l[1])
	}
	clk.set(t0.Add(61 * time.Second))
	waitLines(t, out, 3)
	clk.set(t0.Add(25 * time.Minute)) // past 10m and 20m at once: one line
	if l := waitLines(t, out, 4); !strings.Contains(l[3], "open 25m0s") {
		t.Errorf("fourth report %q, want open 25m0s", l[3])
	}
	clk.set(t0.Add(30 * time.Minute))
	waitLines(t, out, 5)

	// Once the span reached the printer as a span, it is no longer followed.
	_ = p.ConsumeSpans(context.Background(), []bridge.Span{span(1, 1, 0, "GET /slow", 0, 31*time.Minute)})
	clk.set(t0.Add(time.Hour))
	waitLines(t, out, 5)
	if st := p.Stats(); st.OpenReports != 5 || st.OpenNotFollowed != 0 {
		t.Errorf("stats %+v, want 5 reports", st)
	}
}

func TestStillOpenBoundedAndOff(t *testing.T) {
	clk := &clock{now: t0}
	out := &testenv.SyncBuffer{}
	p := New(out, WithGroupWait(20*time.Millisecond), withClock(clk.Now), WithMaxOpen(2))
	defer p.Shutdown(context.Background())
	for id := byte(1); id <= 3; id++ {
		p.ObserveEvents([]bridge.Event{{TraceID: tid(id), SpanID: sid(id), Time: t0, Body: &bridge.SpanOpen{Name: "job"}}})
	}
	clk.set(t0.Add(2 * time.Second))
	waitLines(t, out, 2)
	if st := p.Stats(); st.OpenNotFollowed != 1 {
		t.Errorf("OpenNotFollowed = %d, want 1", st.OpenNotFollowed)
	}

	off := &testenv.SyncBuffer{}
	q := New(off, WithGroupWait(20*time.Millisecond), withClock(clk.Now), WithOpenAfter(-1))
	defer q.Shutdown(context.Background())
	q.ObserveEvents([]bridge.Event{{TraceID: tid(1), SpanID: sid(1), Time: t0, Body: &bridge.SpanOpen{Name: "job"}}})
	clk.set(t0.Add(time.Hour))
	waitLines(t, off, 0)
}
