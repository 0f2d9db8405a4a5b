package bridge_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// A CompleteSpan (protocol 1.1) assembles into the span its SpanOpen and SpanEndData
// would have made, and a child's one ahead of its root's SpanOpen does not take the
// root.
func TestCompleteSpan(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(2, 3*time.Millisecond, &bridge.CompleteSpan{
		Start: t0.Add(time.Millisecond),
		Open:  &bridge.SpanOpen{Name: "query", SpanKind: trace.SpanKindClient, Parent: spanID(1), Attributes: []attribute.KeyValue{attribute.String("db", "pg")}},
		End:   &bridge.SpanEndData{Status: bridge.Status{Code: codes.Error, Description: "timeout"}, Attributes: []attribute.KeyValue{attribute.Int("rows", 0)}},
	})
	s.add(1, 0, &bridge.SpanOpen{Name: "GET"})
	s.add(1, 5*time.Millisecond, &bridge.SpanEndData{})
	s.add(3, 6*time.Millisecond, &bridge.SpanOpen{Name: "after the end"}) // the stream ended with its root
	consume(t, a, s.evs...)
	q := col.byName(t, "query")
	if q.Parent != spanID(1) || q.SpanKind != trace.SpanKindClient || !q.Start.Equal(t0.Add(time.Millisecond)) ||
		!q.End.Equal(t0.Add(3*time.Millisecond)) || q.Status.Code != codes.Error || len(q.Attributes) != 2 || q.Unfinished {
		t.Fatalf("query %+v", q)
	}
	if root := col.byName(t, "GET"); root.Unfinished {
		t.Fatalf("root %+v", root)
	}
	st := a.Stats()
	if st.Spans != 2 || st.OpenSpans != 1 || st.Rejected != 0 || st.Gaps != 0 {
		t.Fatalf("stats %+v: the root's end closed the stream, the span after it opened anew", st)
	}
}

// A descendant announced after its root's CompleteSpan (the root ended first, the
// descendant was held back) is assembled whole, whether or not the root's record said
// that the stream continues.
func TestCompleteSpanRootAndStreamContinues(t *testing.T) {
	for _, continues := range []bool{false, true} {
		a, col := newAssembler(t, newClock())
		s := &stream{id: sid}
		s.add(1, 2*time.Millisecond, &bridge.CompleteSpan{Start: t0, Open: &bridge.SpanOpen{Name: "root"},
			End: &bridge.SpanEndData{StreamContinues: continues}})
		s.add(2, time.Millisecond, &bridge.SpanOpen{Name: "background", Parent: spanID(1)})
		s.add(2, 9*time.Millisecond, &bridge.SpanEndData{})
		s.add(1, 9*time.Millisecond, &bridge.Outcome{Outcome: "ok"})
		consume(t, a, s.evs...)
		bg := col.byName(t, "background")
		if bg.Unfinished {
			t.Fatalf("continues=%v: background %+v", continues, bg)
		}
	}
}

// A CompleteSpan without its bodies is rejected, not a panic.
func TestCompleteSpanWithoutBodies(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.CompleteSpan{})
	consume(t, a, s.evs...)
	if len(col.all()) != 0 || a.Stats().Rejected != 1 {
		t.Fatalf("spans %v stats %+v", col.all(), a.Stats())
	}
}
