package stwconnector

import (
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/trace"
)

// Split by trace id over three independent connectors (tier 2 behind a loadbalancing
// exporter), the streams come out as exactly the spans one connector makes of them.
func TestSplitByTraceIDMatchesOneInstance(t *testing.T) {
	rec := record(t, 60)
	cfg := createDefaultConfig().(*Config)

	one := newInstance(t, cfg)
	for _, batch := range rec {
		one.consume(t, batch)
	}
	one.shutdown(t)
	want := rows(one.sink)

	r := newRing("tier2-0:4317", "tier2-1:4317", "tier2-2:4317")
	pool := make([]*instance, 3)
	sinks := make([]*consumertest.TracesSink, 3)
	for i := range pool {
		pool[i] = newInstance(t, cfg)
		sinks[i] = pool[i].sink
	}
	for _, batch := range rec {
		for m, part := range r.split(batch, len(pool)) {
			pool[m].consume(t, part)
		}
	}
	for _, in := range pool {
		in.shutdown(t)
	}
	got := rows(sinks...)

	if len(want) != 60*3 {
		t.Fatalf("one instance emitted %d spans, want %d", len(want), 60*3)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("three instances emitted %d spans, one instance %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
	for i, s := range sinks {
		if s.SpanCount() == 0 {
			t.Errorf("instance %d got no trace: the split is not spreading the load", i)
		}
	}
	unfinished := 0
	for _, r := range want {
		if r.Unfinished {
			unfinished++
		}
		if r.Name == "route pending" {
			t.Errorf("span %s kept its first name: the rename was lost", r)
		}
	}
	if unfinished != 15 {
		t.Errorf("%d unfinished spans, want 15 (the grandchild of every fourth trace)", unfinished)
	}
}

func firstDiff(got, want []spanRow) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return "got " + got[i].String() + ", want " + want[i].String()
		}
	}
	return "lengths differ"
}

// When the tier-2 pool grows mid-stream, the traces whose route moves split across
// two instances: the old one reports the spans it saw open as unfinished once the
// stream is silent (stream_timeout), the new one counts the ends it cannot pair as
// unusable and the sequence numbers it never saw as gaps, and emits complete the spans
// opened after the move. Traces that did not move are untouched.
func TestPoolChangeMidStream(t *testing.T) {
	const traces = 80
	// Every trace: open root, open child (rename) ... then the pool changes ... child
	// and root end. The split point is after the first half of each trace's events.
	first, second := recordPhased(t, traces)
	cfg := createDefaultConfig().(*Config)
	cfg.StreamTimeout = 300 * time.Millisecond
	cfg.SweepInterval = 20 * time.Millisecond
	before := newRing("tier2-0", "tier2-1", "tier2-2")
	after := newRing("tier2-0", "tier2-1", "tier2-2", "tier2-3")
	pool := make([]*instance, 4)
	for i := range pool {
		pool[i] = newInstance(t, cfg)
	}
	for m, part := range before.split(first, 3) {
		pool[m].consume(t, part)
	}
	for m, part := range after.split(second, 4) {
		pool[m].consume(t, part)
	}

	moved := map[trace.TraceID]bool{}
	for _, e := range first {
		if before.member(e.TraceID) != after.member(e.TraceID) {
			moved[e.TraceID] = true
		}
	}
	if len(moved) == 0 || len(moved) == traces {
		t.Fatalf("%d of %d traces moved: the ring does not behave as a consistent hash", len(moved), traces)
	}
	t.Logf("%d of %d traces moved to another instance when the pool grew from 3 to 4", len(moved), traces)

	// Wait until the old instances report the moved traces' open spans unfinished.
	deadline := time.Now().Add(30 * time.Second)
	for {
		unfinished := 0
		for _, in := range pool {
			for _, r := range rows(in.sink) {
				if r.Unfinished {
					unfinished++
				}
			}
		}
		if unfinished >= 2*len(moved) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, in := range pool {
		in.shutdown(t)
	}

	var unusable, gaps uint64
	for _, in := range pool {
		st := in.c.(*tracesConnector).stats()
		unusable += st.Rejected
		gaps += st.Gaps
	}
	for _, r := range rows(func() []*consumertest.TracesSink {
		var s []*consumertest.TracesSink
		for _, in := range pool {
			s = append(s, in.sink)
		}
		return s
	}()...) {
		id, _ := trace.TraceIDFromHex(r.TraceID)
		switch {
		case !moved[id] && r.Unfinished:
			t.Errorf("span %s of a trace that kept its route came out unfinished", r)
		case moved[id] && r.Name != "late child" && !r.Unfinished:
			t.Errorf("span %s of a moved trace, opened before the move, came out complete", r)
		case r.Name == "late child" && r.Unfinished:
			t.Errorf("span %s, opened and ended after the move, came out unfinished", r)
		}
	}
	// Each moved trace: the ends of root and child reach the new instance unpaired.
	if want := uint64(2 * len(moved)); unusable != want {
		t.Errorf("unusable events (ends without open) = %d, want %d", unusable, want)
	}
	if gaps == 0 {
		t.Errorf("no gap counted on the new instances, which never saw the first events of the moved streams")
	}
}
