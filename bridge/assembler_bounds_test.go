package bridge_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/stwbridge/stwbridge/bridge"
)

// A stream holds at most MaxOpenSpansPerStream spans open; the events of a refused span
// are rejected, and only spans really open count (one that ends, or is reported
// unfinished, makes room).
func TestMaxOpenSpansPerStream(t *testing.T) {
	a, col := newAssembler(t, newClock(), bridge.WithMaxOpenSpansPerStream(2))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "1"})
	s.add(2, 0, &bridge.SpanOpen{Name: "2"})
	s.add(1, 0, &bridge.SpanOpen{Name: "1 again"}) // a second open of an open span: rejected
	s.add(3, 0, &bridge.SpanOpen{Name: "3"})       // refused
	s.add(3, 1, &bridge.Attributes{})              // rejected
	s.add(3, 1, &bridge.SpanEndData{})             // rejected
	s.add(1, 1, &bridge.SpanEndData{})
	s.add(4, 1, &bridge.SpanOpen{Name: "4"}) // room again
	other := &stream{id: bridge.StreamID{0x5e, 2}}
	other.add(10, 0, &bridge.SpanOpen{Name: "other"}) // another stream has its own bound
	consume(t, a, append(s.evs, other.evs...)...)
	st := a.Stats()
	if st.StreamOverflow != 1 || st.Overflow != 0 || st.Rejected != 3 || st.OpenSpans != 3 || st.Gaps != 0 {
		t.Errorf("stats %+v", st)
	}
	if got := names(col.all()); len(got) != 1 || got[0] != "1" {
		t.Errorf("spans %v, want only 1", got)
	}
	// Unsequenced events (no stream id) have no stream to bound.
	free, _ := newAssembler(t, newClock(), bridge.WithMaxOpenSpansPerStream(1))
	for i := range 3 {
		consume(t, free, bridge.Event{TraceID: tid, SpanID: spanID(i), Time: t0, Body: &bridge.SpanOpen{Name: "x"}})
	}
	if st := free.Stats(); st.OpenSpans != 3 || st.StreamOverflow != 0 {
		t.Errorf("stream-less spans: %+v", st)
	}
}

// Issue 13, item 6: spans refused because the assembler was full never count against
// their stream, so a stream whose spans all ended may open its full share again.
func TestOverflowDoesNotCountAgainstTheStream(t *testing.T) {
	a, _ := newAssembler(t, newClock(), bridge.WithMaxOpenSpans(4), bridge.WithMaxOpenSpansPerStream(5))
	s := &stream{id: sid}
	for i := range 6 { // 4 open, 2 refused by MaxOpenSpans; the 2 never end
		s.add(i, 0, &bridge.SpanOpen{Name: fmt.Sprint(i)})
	}
	for i := range 4 {
		s.add(i, 1, &bridge.SpanEndData{})
	}
	for i := 10; i < 14; i++ {
		s.add(i, 2, &bridge.SpanOpen{Name: fmt.Sprint(i)})
	}
	consume(t, a, s.evs...)
	if st := a.Stats(); st.OpenSpans != 4 || st.StreamOverflow != 0 || st.Overflow != 2 {
		t.Errorf("stats %+v: the stream should hold 4 new spans", st)
	}
}

// Issue 13, item 8: a sequence number no producer can reach is rejected; the stream
// goes on, and the gap count neither jumps nor wraps.
func TestImpossibleSequenceRejected(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c)
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	bad := s.add(1, 1, &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("bad", 1)}})
	bad.Sequence = math.MaxUint64
	over := bad
	over.Sequence = bridge.MaxSequence + 1
	s.seq-- // the next real event takes number 1
	consume(t, a, s.evs[0], bad, over)
	consume(t, a, s.add(1, 2, &bridge.SpanEndData{}))
	c.Add(time.Minute)
	_ = a.Sweep(context.Background())
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if st.Gaps != 0 || st.Rejected != 2 || st.Spans != 1 || st.Unfinished != 0 {
		t.Errorf("stats %+v", st)
	}
	if sp := col.byName(t, "a"); len(sp.Attributes) != 0 {
		t.Errorf("attributes of the rejected event applied: %v", sp.Attributes)
	}
	// The largest real number is taken, and counted as the gap it is.
	b, _ := newAssembler(t, c, bridge.WithReorderTimeout(time.Second))
	consume(t, b, bridge.Event{TraceID: tid, SpanID: spanID(1), StreamID: sid, Sequence: bridge.MaxSequence, Time: t0, Body: &bridge.Heartbeat{}})
	c.Add(2 * time.Second)
	_ = b.Sweep(context.Background())
	if st := b.Stats(); st.Gaps != bridge.MaxSequence || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
	// A producer reporting an absurd number of drops saturates the count.
	d, _ := newAssembler(t, c)
	ds := &stream{id: sid}
	ds.add(1, 0, &bridge.StreamDiagnostic{DroppedEvents: math.MaxUint64})
	ds.add(1, 0, &bridge.StreamDiagnostic{DroppedEvents: math.MaxUint64})
	consume(t, d, ds.evs...)
	if st := d.Stats(); st.Dropped != math.MaxUint64 {
		t.Errorf("dropped %d, want saturated", st.Dropped)
	}
}

// Issue 17, item 4: a span reported unfinished ends at the last moment the assembler
// knew it alive (the latest event or heartbeat of its stream), not at its start.
func TestUnfinishedEndsAtLastSignOfLife(t *testing.T) {
	for name, finish := range map[string]func(a *bridge.Assembler, c *clock){
		"stream timeout": func(a *bridge.Assembler, c *clock) { c.Add(time.Minute); _ = a.Sweep(context.Background()) },
		"orphan after":   func(a *bridge.Assembler, c *clock) { c.Add(2 * time.Hour); _ = a.Sweep(context.Background()) },
		"shutdown":       func(a *bridge.Assembler, _ *clock) { _ = a.Shutdown(context.Background()) },
	} {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			timeout := 30 * time.Second
			if name == "orphan after" {
				timeout = 3 * time.Hour
			}
			a, col := newAssembler(t, c, bridge.WithStreamTimeout(timeout), bridge.WithOrphanAfter(time.Hour))
			s := &stream{id: sid}
			consume(t, a, s.add(1, 0, &bridge.SpanOpen{Name: "root"}), s.add(2, time.Second, &bridge.SpanOpen{Name: "child"}))
			c.Add(5 * time.Second)
			consume(t, a, s.add(1, 5*time.Second, &bridge.Heartbeat{}))
			c.Add(5 * time.Second)
			consume(t, a, s.add(1, 10*time.Second, &bridge.Heartbeat{}))
			finish(a, c)
			for _, n := range []string{"root", "child"} {
				if sp := col.byName(t, n); !sp.Unfinished || !sp.End.Equal(t0.Add(10*time.Second)) {
					t.Errorf("%s: unfinished %v, ends %v after t0, want 10s (the last heartbeat)", n, sp.Unfinished, sp.End.Sub(t0))
				}
			}
		})
	}
}

// Late spans are bounded by count, by estimated bytes and by time; the oldest go first
// and every one forgotten is counted.
func TestLateSpansBounded(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	unfinished := func(a *bridge.Assembler, s *stream, span int) {
		consume(t, a, s.add(span, 0, &bridge.SpanOpen{Name: fmt.Sprint(span), Attributes: []attribute.KeyValue{attribute.String("big", big)}}),
			s.add(span, 1, &bridge.SpanEndData{Unfinished: true}))
	}
	lateEnd := func(a *bridge.Assembler, s *stream, span int) {
		consume(t, a, s.add(span, 2, &bridge.SpanEndData{}))
	}

	t.Run("bytes", func(t *testing.T) {
		a, _ := newAssembler(t, newClock(), bridge.WithMaxLateBytes(200<<10)) // room for 3 spans of 64 KiB
		s := &stream{id: sid}
		for i := range 5 {
			unfinished(a, s, i)
		}
		st := a.Stats()
		if st.LateSpans != 3 || st.LateBytes > 200<<10 || st.LateBytes < 3*64<<10 || st.LateForgotten != 2 {
			t.Fatalf("stats %+v", st)
		}
		lateEnd(a, s, 0) // forgotten: rejected
		lateEnd(a, s, 4) // remembered: the real span
		if st := a.Stats(); st.Late != 1 || st.Rejected != 1 || st.LateSpans != 2 {
			t.Errorf("stats %+v", st)
		}
		// A span larger than the whole bound is not kept at all.
		small, _ := newAssembler(t, newClock(), bridge.WithMaxLateBytes(1<<10))
		unfinished(small, &stream{id: sid}, 1)
		if st := small.Stats(); st.LateSpans != 0 || st.LateForgotten != 1 || st.LateBytes != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("time", func(t *testing.T) {
		c := newClock()
		a, _ := newAssembler(t, c, bridge.WithForgetLateAfter(time.Minute))
		s := &stream{id: sid}
		unfinished(a, s, 1)
		c.Add(50 * time.Second)
		unfinished(a, s, 2)
		c.Add(20 * time.Second)
		_ = a.Sweep(context.Background())
		if st := a.Stats(); st.LateSpans != 1 || st.LateForgotten != 1 {
			t.Fatalf("stats %+v", st)
		}
		c.Add(time.Minute)
		_ = a.Sweep(context.Background())
		if st := a.Stats(); st.LateSpans != 0 || st.LateBytes != 0 || st.LateForgotten != 2 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("count", func(t *testing.T) {
		a, _ := newAssembler(t, newClock(), bridge.WithMaxLateSpans(2))
		s := &stream{id: sid}
		for i := range 4 {
			unfinished(a, s, i)
		}
		if st := a.Stats(); st.LateSpans != 2 || st.LateForgotten != 2 {
			t.Errorf("stats %+v", st)
		}
	})
}

// ReleaseMemory forgets the late spans and the parked streams, and keeps open spans.
func TestReleaseMemory(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c)
	s := &stream{id: sid}
	consume(t, a, s.add(1, 0, &bridge.SpanOpen{Name: "open"}), s.add(2, 0, &bridge.SpanOpen{Name: "late"}),
		s.add(2, 1, &bridge.SpanEndData{Unfinished: true}))
	idle := &stream{id: bridge.StreamID{0x5e, 9}}
	consume(t, a, idle.add(5, 0, &bridge.SpanOpen{Name: "done"}), idle.add(5, 1, &bridge.SpanEndData{}))
	_ = a.Sweep(context.Background()) // parks the idle stream
	if st := a.Stats(); st.LateSpans != 1 || st.Streams != 2 {
		t.Fatalf("before: %+v", st)
	}
	if freed := a.ReleaseMemory(); freed <= 0 {
		t.Errorf("ReleaseMemory freed %d bytes", freed)
	}
	st := a.Stats()
	if st.LateSpans != 0 || st.LateBytes != 0 || st.LateForgotten != 1 || st.OpenSpans != 1 || st.Streams != 1 {
		t.Errorf("after: %+v", st)
	}
	consume(t, a, s.add(1, 2, &bridge.SpanEndData{}))
	if sp := col.byName(t, "open"); sp.Unfinished {
		t.Errorf("the open span was let go: %+v", sp)
	}
}

// Snapshot returns what restores the open spans (and the events held back) in a new
// assembler; spans that ended are not in it.
func TestSnapshotRestores(t *testing.T) {
	c := newClock()
	a, _ := newAssembler(t, c, bridge.WithKeepEvents())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "root"})
	s.add(2, 1, &bridge.SpanOpen{Name: "child", Parent: spanID(1)})
	s.add(2, 2, &bridge.UpdateName{Name: "child renamed"})
	s.add(1, 3, &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("n", 1)}})
	s.add(3, 4, &bridge.SpanOpen{Name: "done", Parent: spanID(1)})
	s.add(3, 5, &bridge.SpanEndData{})
	s.add(1, 6, &bridge.Heartbeat{})
	s.seq++ // a gap: the next event is held back
	s.add(2, 8, &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("m", 2)}})
	consume(t, a, s.evs...)
	snap := a.Snapshot()
	var seqs []uint64
	for _, e := range snap {
		seqs = append(seqs, e.Sequence)
	}
	if fmt.Sprint(seqs) != "[0 1 2 3 8]" {
		t.Fatalf("snapshot sequences %v, want [0 1 2 3 8] (the open spans' events and the held one)", seqs)
	}
	if err := a.Suspend(context.Background()); err != nil {
		t.Fatal(err)
	}

	b, col := newAssembler(t, c, bridge.WithReorderTimeout(time.Second))
	consume(t, b, snap...)
	c.Add(2 * time.Second)
	_ = b.Sweep(context.Background()) // gives up on the numbers of the span that ended
	consume(t, b, bridge.Event{TraceID: tid, SpanID: spanID(2), StreamID: sid, Sequence: 9, Time: t0.Add(9), Body: &bridge.SpanEndData{}},
		bridge.Event{TraceID: tid, SpanID: spanID(1), StreamID: sid, Sequence: 10, Time: t0.Add(10), Body: &bridge.SpanEndData{}})
	child, root := col.byName(t, "child renamed"), col.byName(t, "root")
	if child.Unfinished || root.Unfinished || len(child.Attributes) != 1 || len(root.Attributes) != 1 || !child.Start.Equal(t0.Add(1)) {
		t.Errorf("restored spans: child %+v, root %+v", child, root)
	}
	if st := b.Stats(); st.OpenSpans != 0 {
		t.Errorf("stats %+v", st)
	}
	// Without WithKeepEvents, only held-back events are returned.
	plain, _ := newAssembler(t, c)
	consume(t, plain, s.evs[0])
	if n := len(plain.Snapshot()); n != 0 {
		t.Errorf("snapshot without KeepEvents has %d events", n)
	}
}
