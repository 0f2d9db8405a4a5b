package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// collector keeps the spans an assembler emits.
type collector struct {
	mu    sync.Mutex
	spans []bridge.Span
}

func (c *collector) ConsumeSpans(_ context.Context, spans []bridge.Span) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.spans = append(c.spans, spans...)
	return nil
}

func (c *collector) all() []bridge.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans)
}

func (c *collector) byName(t *testing.T, name string) bridge.Span {
	t.Helper()
	var found []bridge.Span
	for _, s := range c.all() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1 (all: %v)", len(found), name, names(c.all()))
	}
	return found[0]
}

func names(spans []bridge.Span) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}

// clock is a fake clock for WithNow.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var (
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tid = trace.TraceID{0xaa, 1}
	sid = bridge.StreamID{0x5e, 1}
)

func spanID(n int) trace.SpanID { return trace.SpanID{0x5a, byte(n >> 8), byte(n)} }

// stream builds the events of one stream with consecutive sequence numbers.
type stream struct {
	id  bridge.StreamID
	tr  trace.TraceID // tid when zero
	seq uint64
	evs []bridge.Event
}

func (s *stream) add(span int, at time.Duration, b bridge.Body) bridge.Event {
	tr := s.tr
	if !tr.IsValid() {
		tr = tid
	}
	e := bridge.Event{TraceID: tr, SpanID: spanID(span), StreamID: s.id, Sequence: s.seq, Time: t0.Add(at), Body: b}
	s.seq++
	s.evs = append(s.evs, e)
	return e
}

func newAssembler(t *testing.T, c *clock, opts ...bridge.AssemblerOption) (*bridge.Assembler, *collector) {
	t.Helper()
	col := &collector{}
	return bridge.NewAssembler(col, append([]bridge.AssemblerOption{bridge.WithNow(c.Now)}, opts...)...), col
}

func consume(t *testing.T, a *bridge.Assembler, evs ...bridge.Event) {
	t.Helper()
	if err := a.Consume(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

func TestAssembleOneSpan(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "GET", SpanKind: trace.SpanKindServer, Parent: spanID(9),
		Attributes: []attribute.KeyValue{attribute.String("a", "1"), attribute.Int("b", 1)}})
	s.add(1, 1, &bridge.UpdateName{Name: "GET /users"})
	s.add(1, 2, &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.String("a", "2"), attribute.Bool("c", true)}})
	s.add(1, 3, &bridge.UpdateName{Name: "GET /users/{id}"})
	s.add(1, 4, &bridge.StatusUpdate{Status: bridge.Status{Code: codes.Error, Description: "bad"}})
	s.add(1, 5*time.Millisecond, &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.Int("b", 2)},
		Events: []bridge.SpanEvent{{Name: "e"}}, ChildSpanCount: 3})
	consume(t, a, s.evs[:5]...)
	if n := len(col.all()); n != 0 {
		t.Fatalf("%d spans before the end", n)
	}
	consume(t, a, s.evs[5])
	sp := col.byName(t, "GET /users/{id}")
	want := []attribute.KeyValue{attribute.String("a", "2"), attribute.Int("b", 2), attribute.Bool("c", true)}
	if !reflect.DeepEqual(sp.Attributes, want) {
		t.Errorf("attributes %v, want %v", sp.Attributes, want)
	}
	if sp.Status.Code != codes.Error || sp.Parent != spanID(9) || sp.SpanKind != trace.SpanKindServer ||
		!sp.Start.Equal(t0) || !sp.End.Equal(t0.Add(5*time.Millisecond)) || sp.Unfinished ||
		len(sp.Events) != 1 || sp.ChildSpanCount != 3 || sp.StreamID != sid {
		t.Errorf("span %+v", sp)
	}
	// The SpanOpen's attribute slice is the producer's: merging must not have changed it.
	if v := s.evs[0].Body.(*bridge.SpanOpen).Attributes[0].Value.AsString(); v != "1" {
		t.Errorf("event attributes modified: %q", v)
	}
	st := a.Stats()
	if st.Events != 6 || st.Spans != 1 || st.OpenSpans != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReorderAndDuplicates(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	s.add(1, 1, &bridge.UpdateName{Name: "b"})
	s.add(1, 2, &bridge.UpdateName{Name: "c"})
	s.add(1, 3, &bridge.SpanEndData{})
	e := s.evs
	consume(t, a, e[2], e[0], e[2], e[3], e[0])
	if len(col.all()) != 0 {
		t.Fatal("span emitted while seq 1 is missing")
	}
	consume(t, a, e[1], e[1])
	sp := col.byName(t, "c")
	if sp.Unfinished {
		t.Error("unfinished")
	}
	st := a.Stats()
	if st.Duplicates != 3 || st.Reordered == 0 || st.Gaps != 0 || st.Events != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestGapTimeBound(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c, bridge.WithReorderTimeout(time.Second))
	s := &stream{id: sid, seq: 5} // first seen mid-way
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	s.add(1, 1, &bridge.SpanEndData{})
	consume(t, a, s.evs...)
	if len(col.all()) != 0 {
		t.Fatal("emitted before the reorder timeout")
	}
	c.Add(999 * time.Millisecond)
	_ = a.Sweep(context.Background())
	if len(col.all()) != 0 {
		t.Fatal("emitted before the reorder timeout")
	}
	c.Add(time.Millisecond)
	_ = a.Sweep(context.Background())
	col.byName(t, "a")
	if st := a.Stats(); st.Gaps != 5 {
		t.Errorf("gaps %d, want 5", st.Gaps)
	}
	// A number given up on that comes after all is applied, not lost.
	late := bridge.Event{TraceID: tid, SpanID: spanID(2), StreamID: sid, Sequence: 4, Time: t0,
		Body: &bridge.SpanOpen{Name: "late"}}
	consume(t, a, late)
	if st := a.Stats(); st.Gaps != 4 || st.OpenSpans != 1 {
		t.Errorf("after late arrival: %+v", st)
	}
}

// workerd drops events here and there and numbers its streamDiagnostic after them:
// the scattered gaps cost one ReorderTimeout in all, not one each.
func TestScatteredGapsOneWait(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c, bridge.WithReorderTimeout(time.Second))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	for i := range 5 {
		s.seq++ // dropped
		s.add(1, time.Duration(i), &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("i", i)}})
	}
	s.add(1, 9, &bridge.StreamDiagnostic{DroppedEvents: 5})
	s.add(1, 9, &bridge.SpanEndData{})
	consume(t, a, s.evs...)
	c.Add(time.Second)
	_ = a.Sweep(context.Background())
	sp := col.byName(t, "a")
	if !reflect.DeepEqual(sp.Attributes, []attribute.KeyValue{attribute.Int("i", 4)}) {
		t.Errorf("attributes %v", sp.Attributes)
	}
	// The diagnostic (seq 11, 5 dropped) covers 7..11 by the rule of the pipeline, so
	// the gaps at 7 and 9 are not counted as gaps; 1, 3 and 5 are.
	if st := a.Stats(); st.Gaps != 3 || st.Dropped != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestGapTimeBoundOnConsume(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c, bridge.WithReorderTimeout(time.Second))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	s.add(1, 1, &bridge.UpdateName{Name: "lost"})
	s.add(1, 2, &bridge.SpanEndData{})
	consume(t, a, s.evs[0], s.evs[2])
	c.Add(2 * time.Second)
	consume(t, a, bridge.Event{StreamID: sid, Sequence: 2, Body: &bridge.Heartbeat{}}) // a duplicate number
	col.byName(t, "a")
}

func TestReorderWindow(t *testing.T) {
	a, col := newAssembler(t, newClock(), bridge.WithReorderWindow(3))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	s.add(1, 1, &bridge.UpdateName{Name: "lost"})
	for i := range 3 {
		s.add(1, time.Duration(2+i), &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("i", i)}})
	}
	s.add(1, 9, &bridge.SpanEndData{})
	consume(t, a, s.evs[0])
	consume(t, a, s.evs[2:5]...)
	if st := a.Stats(); len(col.all()) != 0 || st.Gaps != 0 || st.Held != 3 {
		t.Fatalf("gave up within the window: %+v", st)
	}
	consume(t, a, s.evs[5]) // the 4th held-back event: over the window
	sp := col.byName(t, "a")
	if st := a.Stats(); st.Gaps != 1 {
		t.Errorf("gaps %d", st.Gaps)
	}
	if !reflect.DeepEqual(sp.Attributes, []attribute.KeyValue{attribute.Int("i", 2)}) {
		t.Errorf("attributes %v", sp.Attributes)
	}
}

func TestStreamDiagnosticAccountsForDrops(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	s.seq += 2 // seq 1, 2 dropped; the diagnostic takes the number of the last one (3)
	s.add(0, 1, &bridge.StreamDiagnostic{DroppedEvents: 3})
	s.add(1, 2, &bridge.SpanEndData{})
	consume(t, a, s.evs[0], s.evs[2], s.evs[1]) // the end even overtakes the diagnostic
	col.byName(t, "a")
	if st := a.Stats(); st.Gaps != 0 || st.Dropped != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestHeartbeatKeepsStreamAlive(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c, bridge.WithStreamTimeout(30*time.Second))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	consume(t, a, s.evs[0])
	c.Add(20 * time.Second)
	consume(t, a, s.add(0, 20*time.Second, &bridge.Heartbeat{}))
	c.Add(20 * time.Second)
	_ = a.Sweep(context.Background())
	if len(col.all()) != 0 {
		t.Fatal("timed out despite the heartbeat")
	}
	c.Add(11 * time.Second)
	_ = a.Sweep(context.Background())
	sp := col.byName(t, "a")
	if !sp.Unfinished || sp.Status.Code != codes.Error ||
		sp.Status.Description != "span never ended: no event from its producer for 30s" ||
		!sp.End.Equal(t0.Add(20*time.Second)) {
		t.Errorf("span %+v", sp)
	}
	if st := a.Stats(); st.Unfinished != 1 || st.OpenSpans != 0 {
		t.Errorf("stats %+v", st)
	}
	// The idle stream is forgotten by a later sweep.
	c.Add(61 * time.Second)
	_ = a.Sweep(context.Background())
	if st := a.Stats(); st.Streams != 0 {
		t.Errorf("streams %d", st.Streams)
	}
}

func TestOrphanAfterAndLateEnd(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c, bridge.WithOrphanAfter(time.Minute), bridge.WithStreamTimeout(time.Hour))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "long", Attributes: []attribute.KeyValue{attribute.Int("n", 1)}})
	s.add(2, 0, &bridge.SpanOpen{Name: "short"})
	consume(t, a, s.evs...)
	c.Add(30 * time.Second)
	consume(t, a, s.add(2, 30*time.Second, &bridge.SpanEndData{}))
	c.Add(31 * time.Second)
	_ = a.Sweep(context.Background())
	sp := col.byName(t, "long")
	if !sp.Unfinished || !strings.Contains(sp.Status.Description, "still open after 1m0s") || !sp.End.Equal(t0.Add(30*time.Second)) {
		t.Errorf("orphan %+v", sp)
	}
	// The real end comes after all: the real span goes out too, counted as late.
	consume(t, a, s.add(1, 90*time.Second, &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.Int("n", 2)}}))
	spans := col.all()
	last := spans[len(spans)-1]
	if last.Name != "long" || last.Unfinished || !last.End.Equal(t0.Add(90*time.Second)) || last.Status.Code == codes.Error ||
		!reflect.DeepEqual(last.Attributes, []attribute.KeyValue{attribute.Int("n", 2)}) {
		t.Errorf("late span %+v", last)
	}
	if v := spans[len(spans)-2].Attributes[0].Value.AsInt64(); v != 1 {
		t.Errorf("the unfinished span emitted earlier changed: n=%d", v)
	}
	if st := a.Stats(); st.Late != 1 || st.Unfinished != 1 || st.Spans != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestMaxLateSpansNone(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c, bridge.WithOrphanAfter(time.Minute), bridge.WithStreamTimeout(time.Hour), bridge.WithMaxLateSpans(-1))
	s := &stream{id: sid}
	consume(t, a, s.add(1, 0, &bridge.SpanOpen{Name: "long"}))
	c.Add(2 * time.Minute)
	_ = a.Sweep(context.Background())
	consume(t, a, s.add(1, 0, &bridge.SpanEndData{}))
	if st := a.Stats(); st.Late != 0 || st.Rejected != 1 || len(col.all()) != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestOutcomeEndsLocalStream(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "root"})
	s.add(2, 1, &bridge.SpanOpen{Name: "child", Parent: spanID(1)})
	s.add(1, 2, &bridge.SpanEndData{})
	s.add(0, 3, &bridge.Outcome{Outcome: "ok"})
	consume(t, a, s.evs...)
	if root := col.byName(t, "root"); root.Unfinished || root.Status.Code != codes.Unset {
		t.Errorf("root %+v", root)
	}
	child := col.byName(t, "child")
	if !child.Unfinished || child.Status.Description != `span never ended: its stream ended (outcome "ok") before its end` || !child.End.Equal(t0.Add(3)) {
		t.Errorf("child %+v", child)
	}
}

func TestProducerReportsUnfinished(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	s.add(1, 7, &bridge.SpanEndData{Unfinished: true})
	consume(t, a, s.evs...)
	sp := col.byName(t, "a")
	if !sp.Unfinished || sp.Status.Code != codes.Error || !strings.Contains(sp.Status.Description, "producer shut down") || !sp.End.Equal(t0.Add(7)) {
		t.Errorf("span %+v", sp)
	}
	// The producer's own description, when it gives one, is kept as it is.
	consume(t, a, s.add(2, 8, &bridge.SpanOpen{Name: "b"}),
		s.add(2, 9, &bridge.SpanEndData{Unfinished: true, Status: bridge.Status{Code: codes.Error, Description: "process exiting"}}))
	if b := col.byName(t, "b"); !b.Unfinished || b.Status.Description != "process exiting" {
		t.Errorf("span %+v", b)
	}
}

func TestShutdown(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	s.add(2, 1, &bridge.SpanOpen{Name: "b"})
	s.seq++ // a gap: b's end waits for it
	s.add(2, 2, &bridge.SpanEndData{})
	consume(t, a, s.evs...)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := col.byName(t, "b"); b.Unfinished {
		t.Error("held-back end not applied at shutdown")
	}
	if sp := col.byName(t, "a"); !sp.Unfinished || !strings.Contains(sp.Status.Description, "shut down") || !sp.End.Equal(t0.Add(2)) {
		t.Errorf("span %+v", sp)
	}
	if err := a.Consume(context.Background(), s.evs); !errors.Is(err, bridge.ErrAssemblerShutdown) {
		t.Errorf("consume after shutdown: %v", err)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
}

// Suspend applies what is held back, like Shutdown, but lets the open spans go unreported.
func TestSuspend(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	s.add(2, 1, &bridge.SpanOpen{Name: "b"})
	s.seq++ // a gap: b's end waits for it
	s.add(2, 2, &bridge.SpanEndData{})
	consume(t, a, s.evs...)
	if err := a.Suspend(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := col.all(); len(got) != 1 || got[0].Name != "b" || got[0].Unfinished {
		t.Fatalf("spans at suspend: %v, want only b, complete", names(got))
	}
	if err := a.Consume(context.Background(), s.evs); !errors.Is(err, bridge.ErrAssemblerShutdown) {
		t.Errorf("consume after suspend: %v", err)
	}
	if err := a.Shutdown(context.Background()); err != nil || len(col.all()) != 1 {
		t.Errorf("shutdown after suspend: %v, spans %v", err, names(col.all()))
	}
}

func TestMaxOpenSpans(t *testing.T) {
	a, col := newAssembler(t, newClock(), bridge.WithMaxOpenSpans(2))
	s := &stream{id: sid}
	for i := range 3 {
		s.add(i, 0, &bridge.SpanOpen{Name: fmt.Sprint(i)})
	}
	s.add(2, 1, &bridge.SpanEndData{})
	s.add(0, 1, &bridge.SpanEndData{})
	s.add(3, 1, &bridge.SpanOpen{Name: "3"}) // room again
	consume(t, a, s.evs...)
	st := a.Stats()
	if st.Overflow != 1 || st.OpenSpans != 2 || st.Rejected != 1 || len(col.all()) != 1 {
		t.Errorf("stats %+v, spans %v", st, names(col.all()))
	}
}

func TestMaxAttributesAndEventsPerSpan(t *testing.T) {
	a, col := newAssembler(t, newClock(), bridge.WithMaxAttributesPerSpan(2), bridge.WithMaxEventsPerSpan(1))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "a", Attributes: []attribute.KeyValue{attribute.Int("a", 1), attribute.Int("b", 1), attribute.Int("c", 1)}})
	s.add(1, 1, &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("a", 2), attribute.Int("d", 1)}})
	s.add(1, 2, &bridge.SpanEndData{Events: []bridge.SpanEvent{{Name: "x"}, {Name: "y"}}})
	consume(t, a, s.evs...)
	sp := col.byName(t, "a")
	if !reflect.DeepEqual(sp.Attributes, []attribute.KeyValue{attribute.Int("a", 2), attribute.Int("b", 1)}) ||
		sp.DroppedAttributes != 2 || len(sp.Events) != 1 || sp.DroppedEvents != 1 {
		t.Errorf("span %+v", sp)
	}
	if st := a.Stats(); st.AttributesDropped != 2 || st.EventsDropped != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestEventsWithoutSpanAreRejected(t *testing.T) {
	a, _ := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.UpdateName{Name: "x"})
	s.add(1, 0, &bridge.Attributes{})
	s.add(1, 0, &bridge.SpanEndData{})
	consume(t, a, s.evs...)
	consume(t, a, bridge.Event{StreamID: sid, Sequence: 3})
	if st := a.Stats(); st.Rejected != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestUnsequencedEvents(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{} // zero stream id: applied as they come
	s.add(1, 1, &bridge.SpanEndData{})
	s.add(1, 0, &bridge.SpanOpen{Name: "a"})
	s.add(1, 1, &bridge.SpanEndData{})
	consume(t, a, s.evs...)
	col.byName(t, "a")
	if st := a.Stats(); st.Rejected != 1 || st.Duplicates != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestConcurrentConsumeAndSweep(t *testing.T) {
	col := &collector{}
	a := bridge.NewAssembler(col)
	const producers, streams, spans = 8, 10, 20
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = a.Sweep(context.Background())
				_ = a.Stats()
				runtime.Gosched()
			}
		}
	}()
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(p)))
			for k := range streams {
				s := &stream{id: bridge.StreamID{byte(p), byte(k), 1}, tr: trace.TraceID{byte(p), byte(k), 1}}
				for i := range spans {
					s.add(i, 0, &bridge.SpanOpen{Name: "s"})
				}
				for i := range spans {
					s.add(i, 1, &bridge.SpanEndData{})
				}
				evs := s.evs
				for len(evs) > 0 {
					n := min(1+rng.Intn(8), len(evs))
					if err := a.Consume(context.Background(), evs[:n]); err != nil {
						t.Error(err)
					}
					evs = evs[n:]
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if got := len(col.all()); got != producers*streams*spans {
		t.Errorf("%d spans, want %d", got, producers*streams*spans)
	}
	if st := a.Stats(); st.OpenSpans != 0 || st.Unfinished != 0 {
		t.Errorf("stats %+v", st)
	}
}

// genStream makes the events of one random stream: spans opened under random open
// parents, renamed, given attributes and statuses, mostly ended, then an Outcome.
func genStream(rng *rand.Rand, id bridge.StreamID, traceID trace.TraceID) []bridge.Event {
	var evs []bridge.Event
	var open []trace.SpanID
	next := 1
	at := time.Duration(0)
	add := func(span trace.SpanID, b bridge.Body) {
		at += time.Duration(rng.Intn(3)) * time.Millisecond
		evs = append(evs, bridge.Event{TraceID: traceID, SpanID: span, StreamID: id, Sequence: uint64(len(evs)), Time: t0.Add(at), Body: b})
	}
	for steps := 5 + rng.Intn(40); steps > 0; steps-- {
		r := rng.Intn(10)
		switch {
		case r < 3 || len(open) == 0:
			sp := trace.SpanID{byte(next >> 8), byte(next), 7}
			next++
			var parent trace.SpanID
			if len(open) > 0 {
				parent = open[rng.Intn(len(open))]
			}
			add(sp, &bridge.SpanOpen{Name: fmt.Sprint("s", next), Parent: parent,
				Attributes: []attribute.KeyValue{attribute.Int("k", rng.Intn(3))}})
			open = append(open, sp)
		case r < 5:
			add(open[rng.Intn(len(open))], &bridge.UpdateName{Name: fmt.Sprint("n", rng.Intn(100))})
		case r < 7:
			add(open[rng.Intn(len(open))], &bridge.Attributes{Attributes: []attribute.KeyValue{
				attribute.Int(fmt.Sprint("k", rng.Intn(3)), rng.Intn(100))}})
		case r < 8:
			add(open[rng.Intn(len(open))], &bridge.StatusUpdate{Status: bridge.Status{Code: codes.Error, Description: "e"}})
		default:
			i := rng.Intn(len(open))
			add(open[i], &bridge.SpanEndData{Attributes: []attribute.KeyValue{attribute.String("end", "y")}})
			open = slices.Delete(open, i, i+1)
		}
	}
	if rng.Intn(4) > 0 { // most streams end; the rest leave spans for Shutdown
		add(trace.SpanID{}, &bridge.Outcome{Outcome: "ok"})
	}
	// Some streams lose a run of events, reported as the pipeline does: a
	// StreamDiagnostic numbered as the last event dropped.
	if len(evs) > 4 && rng.Intn(3) == 0 {
		n := 1 + rng.Intn(3)
		last := 1 + rng.Intn(len(evs)-2) // never the first nor the final event
		first := max(1, last-n+1)
		diag := evs[last]
		diag.Body = &bridge.StreamDiagnostic{DroppedEvents: uint64(last - first + 1)}
		diag.SpanID = trace.SpanID{}
		evs = slices.Concat(evs[:first], []bridge.Event{diag}, evs[last+1:])
	}
	return evs
}

// spanSet sorts spans so that emission order across streams does not matter.
func spanSet(spans []bridge.Span) []bridge.Span {
	spans = slices.Clone(spans)
	slices.SortFunc(spans, func(a, b bridge.Span) int {
		if c := strings.Compare(a.StreamID.String(), b.StreamID.String()); c != 0 {
			return c
		}
		return strings.Compare(a.SpanID.String(), b.SpanID.String())
	})
	return spans
}

func TestPropertyAnyOrderSameSpans(t *testing.T) {
	const window = 8
	rng := rand.New(rand.NewSource(42))
	iterations := 300
	if testing.Short() {
		iterations = 50
	}
	var dropped uint64
	defer func() {
		if dropped == 0 {
			t.Error("no stream lost events: the generator does not exercise StreamDiagnostic")
		}
	}()
	for it := range iterations {
		var streams [][]bridge.Event
		for k := range 1 + rng.Intn(4) {
			streams = append(streams, genStream(rng, bridge.StreamID{byte(it), byte(k), 9}, trace.TraceID{byte(it), byte(k), 9}))
		}
		// Canonical: each stream in order, one stream after the other.
		want, wantStats := assembleAll(t, window, [][]bridge.Event{slices.Concat(streams...)})
		// Perturbed: permuted within blocks of the window, some events repeated, streams
		// interleaved at random, delivered in batches of random size.
		var perturbed [][]bridge.Event
		for _, evs := range streams {
			evs = slices.Clone(evs)
			for lo := 0; lo < len(evs); lo += window {
				blk := evs[lo:min(lo+window, len(evs))]
				rng.Shuffle(len(blk), func(i, j int) { blk[i], blk[j] = blk[j], blk[i] })
			}
			for d := rng.Intn(len(evs)/2 + 1); d > 0; d-- {
				i := rng.Intn(len(evs))
				j := i + rng.Intn(len(evs)-i+1)
				evs = slices.Insert(evs, j, evs[i])
			}
			perturbed = append(perturbed, evs)
		}
		var merged []bridge.Event
		for {
			var live []int
			for i, evs := range perturbed {
				if len(evs) > 0 {
					live = append(live, i)
				}
			}
			if len(live) == 0 {
				break
			}
			i := live[rng.Intn(len(live))]
			merged = append(merged, perturbed[i][0])
			perturbed[i] = perturbed[i][1:]
		}
		var batches [][]bridge.Event
		for len(merged) > 0 {
			n := min(1+rng.Intn(6), len(merged))
			batches = append(batches, merged[:n])
			merged = merged[n:]
		}
		got, gotStats := assembleAll(t, window, batches)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("iteration %d: spans differ\nwant %v\n got %v", it, names(want), names(got))
		}
		if wantStats != gotStats {
			t.Fatalf("iteration %d: rejected, dropped, events %v in order, %v perturbed", it, wantStats, gotStats)
		}
		dropped += wantStats[1]
	}
}

// assembleAll assembles batches in a fresh assembler and returns the spans, and the
// counters that must not depend on the order of delivery.
func assembleAll(t *testing.T, window int, batches [][]bridge.Event) ([]bridge.Span, [3]uint64) {
	t.Helper()
	a, col := newAssembler(t, newClock(), bridge.WithReorderWindow(window))
	for _, b := range batches {
		consume(t, a, b...)
	}
	st := a.Stats()
	if st.Gaps != 0 || st.Held != 0 {
		t.Fatalf("gaps within the window, or events still held back: %+v", st)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return spanSet(col.all()), [3]uint64{st.Rejected, st.Dropped, st.Events}
}

// BenchmarkAssemblerOpenSpan opens spans (a SpanOpen with four attributes, then one
// Attributes event) and reports the heap held per open span.
func BenchmarkAssemblerOpenSpan(b *testing.B) {
	const batch = 10_000
	mk := func(stream bridge.StreamID) []bridge.Event {
		evs := make([]bridge.Event, 0, 2*batch)
		for i := range batch {
			id := trace.SpanID{byte(i >> 16), byte(i >> 8), byte(i), 1}
			attrs := []attribute.KeyValue{attribute.String("http.request.method", "GET"), attribute.String("url.path", "/x"),
				attribute.Int("n", i), attribute.Bool("ok", true)}
			evs = append(evs, bridge.Event{TraceID: tid, SpanID: id, StreamID: stream, Sequence: uint64(2 * i), Time: t0,
				Body: &bridge.SpanOpen{Name: "span", Attributes: attrs}})
			evs = append(evs, bridge.Event{TraceID: tid, SpanID: id, StreamID: stream, Sequence: uint64(2*i + 1), Time: t0,
				Body: &bridge.Attributes{Attributes: []attribute.KeyValue{attribute.Int("status", 200)}}})
		}
		return evs
	}
	discard := bridge.SpanConsumerFunc(func(context.Context, []bridge.Span) error { return nil })
	// Memory: heap after opening batch spans, less the heap before (events included in
	// neither: they are built first and kept alive by both measurements).
	evs := mk(sid)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a := bridge.NewAssembler(discard)
	if err := a.Consume(context.Background(), evs); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if a.Stats().OpenSpans != batch {
		b.Fatalf("%d open", a.Stats().OpenSpans)
	}
	perSpan := float64(after.HeapAlloc-before.HeapAlloc) / batch
	runtime.KeepAlive(evs)
	runtime.KeepAlive(a)

	b.ReportAllocs()
	b.ResetTimer()
	var asm *bridge.Assembler
	for i := 0; b.Loop(); i++ {
		if i%batch == 0 {
			b.StopTimer()
			asm = bridge.NewAssembler(discard)
			b.StartTimer()
		}
		j := 2 * (i % batch)
		if err := asm.Consume(context.Background(), evs[j:j+2]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perSpan, "B/open-span")
}

// FuzzAssembler feeds arbitrary event sequences (any kinds, spans, streams, sequence
// numbers, clock jumps): the assembler never panics, stays within its bounds and ends
// with nothing open.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 5, 0, 0, 1})
	f.Add([]byte{7, 1, 0, 0, 1, 2, 0, 1, 9, 1, 0, 3, 5, 2, 0, 2, 8, 1, 0, 4})
	f.Add([]byte{1, 0, 1, 3, 12, 0, 1, 2, 5, 0, 1, 4, 255, 0, 0, 0, 1, 1, 2, 9})
	f.Fuzz(fuzzAssemble)
}

func fuzzAssemble(t *testing.T, data []byte) {
	{
		c := newClock()
		col := &collector{}
		a := bridge.NewAssembler(col, bridge.WithNow(c.Now), bridge.WithReorderWindow(4),
			bridge.WithMaxOpenSpans(5), bridge.WithMaxAttributesPerSpan(2), bridge.WithMaxEventsPerSpan(2),
			bridge.WithReorderTimeout(time.Second), bridge.WithStreamTimeout(3*time.Second), bridge.WithOrphanAfter(5*time.Second),
			bridge.WithMaxOpenSpansPerStream(3), bridge.WithMaxLateSpans(3), bridge.WithMaxLateBytes(4<<10),
			bridge.WithForgetLateAfter(4*time.Second), bridge.WithKeepEvents())
		var batch []bridge.Event
		for len(data) >= 4 {
			k, span, str, seq := data[0], data[1]%8, data[2]%3, data[3]%32
			data = data[4:]
			if k == 255 {
				c.Add(time.Duration(span) * time.Second)
				_ = a.Sweep(context.Background())
				continue
			}
			if k == 254 { // memory short, or a checkpoint
				a.ReleaseMemory()
				_ = a.Snapshot()
				continue
			}
			var b bridge.Body
			attrs := []attribute.KeyValue{attribute.Int(fmt.Sprint("k", seq%3), int(seq))}
			switch k % 15 {
			case 0:
				b = nil
			case 1:
				// Half of them look like workerd's fetch span, to be mapped as it ends.
				name, at := "s", attrs
				if seq%2 == 0 {
					name, at = "fetch", []attribute.KeyValue{attribute.String("url.full", "http://h/"),
						attribute.String("http.response.status_code", fmt.Sprint(int(seq)*20))}
				}
				b = &bridge.SpanOpen{Name: name, Parent: spanID(int(seq % 8)), Attributes: at}
			case 2:
				b = &bridge.UpdateName{Name: fmt.Sprint(seq)}
			case 3:
				b = &bridge.Attributes{Attributes: attrs}
			case 4:
				b = &bridge.StatusUpdate{Status: bridge.Status{Code: codes.Error}}
			case 5:
				b = &bridge.SpanEndData{Attributes: attrs, Unfinished: seq%5 == 0, Events: []bridge.SpanEvent{{Name: "e"}}}
			case 6:
				b = &bridge.Heartbeat{}
			case 7:
				b = &bridge.Onset{Info: bridge.TriggerInfo{Type: "fetch", Method: "GET", URL: "http://x/%zz"}}
			case 8:
				b = &bridge.Outcome{Outcome: "ok"}
			case 9:
				b = &bridge.Log{Message: "[1]"}
			case 10:
				b = &bridge.Exception{Name: "E"}
			case 11:
				b = &bridge.Return{StatusCode: int(seq) * 20}
			case 12:
				b = &bridge.StreamDiagnostic{DroppedEvents: uint64(span)}
			case 13:
				var parent trace.SpanID
				if seq%3 != 0 {
					parent = spanID(int(seq % 8))
				}
				b = &bridge.CompleteSpan{Start: t0.Add(time.Duration(seq/2) * time.Millisecond),
					Open: &bridge.SpanOpen{Name: "c", Parent: parent, RemoteParent: seq%4 == 0, Attributes: attrs},
					End:  &bridge.SpanEndData{StreamContinues: seq%5 == 0, Unfinished: seq%7 == 0}}
			case 14:
				b = &bridge.DiagnosticChannel{Channel: "ch", Message: fmt.Sprint(seq)}
			}
			var id bridge.StreamID
			if str > 0 {
				id = bridge.StreamID{str}
			}
			batch = append(batch, bridge.Event{TraceID: tid, SpanID: spanID(int(span)), StreamID: id,
				Sequence: uint64(seq), Time: t0.Add(time.Duration(seq) * time.Millisecond), Body: b})
			if k%3 == 0 {
				_ = a.Consume(context.Background(), batch)
				batch = batch[:0]
			}
			if st := a.Stats(); st.OpenSpans > 5 || st.LateSpans > 3 || st.LateBytes > 4<<10 || st.LateBytes < 0 {
				t.Fatalf("over a bound: %+v", st)
			}
		}
		_ = a.Consume(context.Background(), batch)
		if err := a.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := a.Stats(); st.OpenSpans != 0 {
			t.Fatalf("%d spans open after shutdown", st.OpenSpans)
		}
		for _, s := range col.all() {
			if s.End.Before(s.Start) {
				t.Errorf("span ends before it starts: %+v", s)
			}
			if s.Unfinished && s.Status.Code != codes.Error {
				t.Errorf("unfinished span without error status: %+v", s)
			}
			if len(s.Attributes) > 2 || len(s.Events) > 2 {
				t.Errorf("bounds exceeded: %+v", s)
			}
		}
	}
}

// A local stream ends without an Outcome when its root ends while no other span of it
// is open: its state goes, and a retry of its events is recognised as duplicates.
func TestRootEndClosesStream(t *testing.T) {
	for name, open := range map[string]*bridge.SpanOpen{
		"no parent":      {Name: "root"},
		"remote parent":  {Name: "root", Parent: spanID(99), RemoteParent: true},
		"foreign parent": {Name: "root", Parent: spanID(99)}, // a span of another stream
	} {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			a, col := newAssembler(t, c, bridge.WithStreamTimeout(10*time.Second))
			s := &stream{id: sid}
			s.add(1, 0, open)
			s.add(2, 1, &bridge.SpanOpen{Name: "child", Parent: spanID(1)})
			s.add(2, 2, &bridge.SpanEndData{})
			s.add(1, 3, &bridge.SpanEndData{})
			consume(t, a, s.evs...)
			if got := names(col.all()); !reflect.DeepEqual(got, []string{"child", "root"}) {
				t.Fatalf("spans %v", got)
			}
			if st := a.Stats(); st.OpenSpans != 0 || st.Held != 0 || st.Unfinished != 0 || st.Rejected != 0 {
				t.Errorf("stats %+v", st)
			}
			consume(t, a, s.evs...) // an OTLP retry
			if st := a.Stats(); st.Duplicates != 4 || len(col.all()) != 2 {
				t.Errorf("retry after the end: %+v, spans %v", st, names(col.all()))
			}
			// Ended, the stream is forgotten after StreamTimeout, not twice that.
			c.Add(11 * time.Second)
			_ = a.Sweep(context.Background())
			if st := a.Stats(); st.Streams != 0 {
				t.Errorf("streams %d after the stream timeout", st.Streams)
			}
		})
	}
}

// A descendant that outlives the root keeps the stream open: the producer sends an
// Outcome after the last end, and that ends the stream.
func TestChildOutlivesRoot(t *testing.T) {
	c := newClock()
	a, col := newAssembler(t, c, bridge.WithStreamTimeout(10*time.Second))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "root"})
	s.add(2, 1, &bridge.SpanOpen{Name: "child", Parent: spanID(1)})
	s.add(1, 2, &bridge.SpanEndData{})
	s.add(3, 3, &bridge.SpanOpen{Name: "grandchild", Parent: spanID(2)})
	s.add(2, 4, &bridge.SpanEndData{})
	s.add(3, 5, &bridge.SpanEndData{})
	consume(t, a, s.evs...)
	if got := names(col.all()); !reflect.DeepEqual(got, []string{"root", "child", "grandchild"}) {
		t.Fatalf("spans %v", got)
	}
	// No span is open, but the stream has not ended: it is kept twice as long.
	c.Add(11 * time.Second)
	_ = a.Sweep(context.Background())
	if st := a.Stats(); st.Streams != 1 || st.OpenSpans != 0 {
		t.Fatalf("stats %+v", st)
	}
	consume(t, a, s.add(0, 6, &bridge.Outcome{Outcome: "ok"}))
	c.Add(11 * time.Second)
	_ = a.Sweep(context.Background())
	if st := a.Stats(); st.Streams != 0 || st.Unfinished != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Events that follow a stream's end in sequence are still applied (a receiver may
// have taken the wrong span for the root); a SpanOpen among them is a new root, whose
// end closes the stream again. Streams without an id never close this way.
func TestEventsAfterRootEnd(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "first"})
	s.add(1, 1, &bridge.SpanEndData{})
	s.add(2, 2, &bridge.SpanOpen{Name: "second", Parent: spanID(1)})
	s.add(3, 3, &bridge.SpanOpen{Name: "third", Parent: spanID(2)})
	s.add(3, 4, &bridge.SpanEndData{})
	s.add(2, 5, &bridge.SpanEndData{})
	consume(t, a, s.evs...)
	if got := names(col.all()); !reflect.DeepEqual(got, []string{"first", "third", "second"}) {
		t.Fatalf("spans %v", got)
	}
	if st := a.Stats(); st.OpenSpans != 0 || st.Rejected != 0 || st.Unfinished != 0 {
		t.Errorf("stats %+v", st)
	}
	// A retry of the whole stream: all duplicates, though it ended twice.
	consume(t, a, s.evs...)
	if st := a.Stats(); st.Duplicates != 6 || len(col.all()) != 3 {
		t.Errorf("retry: %+v", st)
	}
}

// A StreamDiagnostic held back beyond the root's end still accounts for its drops
// once the end has closed the stream.
func TestDropsReportedAfterRootEnd(t *testing.T) {
	a, col := newAssembler(t, newClock())
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "root"})
	s.add(1, 1, &bridge.SpanEndData{})
	s.seq++ // dropped
	s.add(0, 2, &bridge.StreamDiagnostic{DroppedEvents: 2})
	s.add(2, 3, &bridge.SpanOpen{Name: "late"})
	s.add(2, 4, &bridge.SpanEndData{})
	consume(t, a, s.evs[2], s.evs[0], s.evs[1], s.evs[3], s.evs[4])
	if got := names(col.all()); !reflect.DeepEqual(got, []string{"root", "late"}) {
		t.Fatalf("spans %v", got)
	}
	if st := a.Stats(); st.Gaps != 0 || st.Held != 0 || st.Dropped != 2 {
		t.Errorf("stats %+v", st)
	}
}

// Sweep parks the streams with nothing open in a compact form; a parked stream still
// recognises retries, applies what follows in order, keeps its latest event time
// (the end of a span it reports unfinished) exactly, and is forgotten on time. Event
// times in UTC, in Local and with a monotonic reading (which stays unparked) behave
// alike.
func TestParkedStreamKeepsItsState(t *testing.T) {
	base := time.Now()
	for name, at := range map[string]func(time.Duration) time.Time{
		"utc":       func(d time.Duration) time.Time { return t0.Add(d) },
		"local":     func(d time.Duration) time.Time { return t0.Add(d).Local() },
		"monotonic": func(d time.Duration) time.Time { return base.Add(d) },
	} {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			a, col := newAssembler(t, c, bridge.WithStreamTimeout(10*time.Second))
			sweep := func(d time.Duration) {
				c.Add(d)
				if err := a.Sweep(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			ev := func(seq uint64, span int, d time.Duration, b bridge.Body) bridge.Event {
				return bridge.Event{TraceID: tid, SpanID: spanID(span), StreamID: sid, Sequence: seq, Time: at(d), Body: b}
			}
			evs := []bridge.Event{
				ev(0, 1, 0, &bridge.SpanOpen{Name: "root"}),
				ev(1, 2, time.Second, &bridge.SpanOpen{Name: "child", Parent: spanID(1)}),
				ev(2, 1, 2*time.Second, &bridge.SpanEndData{}),
				ev(3, 2, 9*time.Second, &bridge.SpanEndData{}), // the root ended first: not the stream's end
			}
			consume(t, a, evs...)
			sweep(time.Second)
			consume(t, a, evs[1], evs[3]) // an OTLP retry, recognised
			if st := a.Stats(); st.Duplicates != 2 || st.Streams != 1 || len(col.all()) != 2 {
				t.Fatalf("after the retry: %+v, spans %v", st, names(col.all()))
			}
			sweep(time.Second)
			// What follows is applied; the span never ends and, the stream silent, comes out
			// unfinished, ending at the stream's latest event time.
			consume(t, a, ev(5, 3, 4*time.Second, &bridge.Attributes{}), ev(4, 3, 3*time.Second, &bridge.SpanOpen{Name: "late child", Parent: spanID(1)}))
			sweep(time.Second)
			sweep(10 * time.Second)
			got := col.byName(t, "late child")
			if !got.Unfinished || got.End != at(9*time.Second) || got.Start != at(3*time.Second) {
				t.Fatalf("late child: unfinished %v, start %v, end %v, want end %v", got.Unfinished, got.Start, got.End, at(9*time.Second))
			}
			// Not ended, the stream is remembered twice the stream timeout after its last event.
			sweep(9 * time.Second)
			if st := a.Stats(); st.Streams != 1 || st.Reordered != 1 || st.Rejected != 0 {
				t.Fatalf("stats %+v", st)
			}
			sweep(time.Second)
			if st := a.Stats(); st.Streams != 0 {
				t.Fatalf("%d streams after twice the stream timeout", st.Streams)
			}
		})
	}
}

// An ended stream, parked, is forgotten StreamTimeout after its last event.
func TestParkedEndedStreamIsForgotten(t *testing.T) {
	c := newClock()
	a, _ := newAssembler(t, c, bridge.WithStreamTimeout(10*time.Second))
	s := &stream{id: sid}
	s.add(1, 0, &bridge.SpanOpen{Name: "root"})
	s.add(1, time.Second, &bridge.SpanEndData{})
	consume(t, a, s.evs...)
	for range 10 {
		c.Add(time.Second)
		_ = a.Sweep(context.Background())
		if st := a.Stats(); st.Streams != 1 {
			t.Fatalf("stream forgotten early: %+v", st)
		}
	}
	c.Add(time.Second)
	_ = a.Sweep(context.Background())
	if st := a.Stats(); st.Streams != 0 {
		t.Fatalf("stream kept past the stream timeout: %+v", st)
	}
}

// Parked, the streams remembered for retries are nothing the garbage collector scans.
func TestParkedStreamsAreNotScanned(t *testing.T) {
	const n = 20000
	evs := make([]bridge.Event, 0, 2*n)
	for i := range n {
		id := bridge.StreamID{1, byte(i >> 16), byte(i >> 8), byte(i), 15: 1}
		evs = append(evs,
			bridge.Event{TraceID: tid, SpanID: spanID(1), StreamID: id, Sequence: 0, Time: t0, Body: &bridge.SpanOpen{Name: "s"}},
			bridge.Event{TraceID: tid, SpanID: spanID(1), StreamID: id, Sequence: 1, Time: t0, Body: &bridge.SpanEndData{}})
	}
	// scannable is the heap the garbage collector scans, after a collection.
	scannable := func() int64 {
		runtime.GC()
		s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}}
		metrics.Read(s)
		return int64(s[0].Value.Uint64())
	}
	c := newClock()
	discard := bridge.SpanConsumerFunc(func(context.Context, []bridge.Span) error { return nil })
	base := scannable()
	a := bridge.NewAssembler(discard, bridge.WithNow(c.Now))
	if err := a.Consume(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	live := scannable() - base
	_ = a.Sweep(context.Background())
	parked := scannable() - base
	if st := a.Stats(); st.Streams != n {
		t.Fatalf("%d streams, want %d", st.Streams, n)
	}
	t.Logf("scanned per stream: %d B live, %d B parked", live/n, parked/n)
	if parked > live/3 {
		t.Fatalf("parked streams leave %d B to scan, live ones %d B", parked, live)
	}
	runtime.KeepAlive(evs)
}

// Opening and ending a span allocates nothing once the assembler has warmed up (the
// span's record and the slice of emitted spans are reused).
func TestSteadyStateAllocatesNothing(t *testing.T) {
	a := bridge.NewAssembler(bridge.SpanConsumerFunc(func(context.Context, []bridge.Span) error { return nil }))
	open := bridge.Event{TraceID: tid, SpanID: spanID(1), Time: t0,
		Body: &bridge.SpanOpen{Name: "s", Attributes: []attribute.KeyValue{attribute.String("k", "v")}}}
	end := bridge.Event{TraceID: tid, SpanID: spanID(1), Time: t0.Add(time.Millisecond), Body: &bridge.SpanEndData{}}
	evs := []bridge.Event{open, end}
	ctx := context.Background()
	for range 10 {
		_ = a.Consume(ctx, evs)
	}
	if n := testing.AllocsPerRun(100, func() { _ = a.Consume(ctx, evs) }); n != 0 {
		t.Fatalf("%v allocations per span", n)
	}
	if st := a.Stats(); st.Spans != 111 || st.OpenSpans != 0 {
		t.Fatalf("stats %+v", st)
	}
}
