package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// plWaitUntil polls cond until it holds or the deadline passes.
func plWaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// plRecorder is a tail that keeps what it receives.
type plRecorder struct {
	mu      sync.Mutex
	events  []Event
	batches []int
}

func (r *plRecorder) Consume(_ context.Context, events []Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
	r.batches = append(r.batches, len(events))
	return nil
}

func (r *plRecorder) got() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func (r *plRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// plGate is a tail that blocks in Consume until released, then records like plRecorder.
type plGate struct {
	plRecorder
	entered chan struct{} // receives at each Consume call, while it has room
	release chan struct{}
}

func newPlGate() *plGate {
	return &plGate{entered: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (g *plGate) Consume(ctx context.Context, events []Event) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.release
	return g.plRecorder.Consume(ctx, events)
}

func plStream(n int) StreamID { return StreamID{byte(n >> 8), byte(n), 1} }

func plEvent(stream int, seq uint64, body Body) Event {
	return Event{
		TraceID:  trace.TraceID{byte(stream >> 8), byte(stream), 7},
		SpanID:   trace.SpanID{byte(seq >> 8), byte(seq), 1},
		StreamID: plStream(stream),
		Sequence: seq,
		Time:     time.Unix(1_700_000_000, int64(seq)),
		Body:     body,
	}
}

func plEnd() Body  { return &SpanEndData{} }
func plOpen() Body { return &SpanOpen{Name: "op"} }

// plCheckAccounted checks that, per stream, the events and diagnostics a tail received
// account for every sequence number from 0 to n-1 exactly once, in order; it returns
// the number of dropped events the diagnostics report.
func plCheckAccounted(t *testing.T, got []Event, streams int, n uint64) uint64 {
	t.Helper()
	next := map[StreamID]uint64{}
	var reported uint64
	for _, e := range got {
		want := next[e.StreamID]
		if d, ok := e.Body.(*StreamDiagnostic); ok {
			if d.DroppedEvents == 0 || e.Sequence+1 < d.DroppedEvents || e.Sequence+1-d.DroppedEvents != want {
				t.Fatalf("stream %v: diagnostic seq %d dropped %d, want it to cover from seq %d",
					e.StreamID, e.Sequence, d.DroppedEvents, want)
			}
			if e.TraceID != plEvent(int(e.StreamID[0])<<8|int(e.StreamID[1]), 0, nil).TraceID {
				t.Fatalf("diagnostic of stream %v has trace id %v", e.StreamID, e.TraceID)
			}
			reported += d.DroppedEvents
		} else if e.Sequence != want {
			t.Fatalf("stream %v: got seq %d, want %d", e.StreamID, e.Sequence, want)
		}
		next[e.StreamID] = e.Sequence + 1
	}
	if len(next) != streams {
		t.Fatalf("got events of %d streams, want %d", len(next), streams)
	}
	for id, nx := range next {
		if nx != n {
			t.Fatalf("stream %v: accounted up to seq %d, want %d", id, nx, n)
		}
	}
	return reported
}

func TestPipelineOrderPerStreamManyProducers(t *testing.T) {
	const streams, perStream, batch = 16, 2000, 64
	a, b := &plRecorder{}, &plRecorder{}
	p := NewPipeline([]Tail{a, b}, WithMaxQueueEvents(2*streams*perStream), // room for all, SpanOpens too
		WithMaxQueueBytes(1<<30), WithBatchSize(batch), WithFlushInterval(time.Millisecond))
	var wg sync.WaitGroup
	for s := range streams {
		wg.Go(func() {
			for i := range uint64(perStream) {
				var body Body = &Attributes{}
				switch i % 3 {
				case 0:
					body = plOpen()
				case 2:
					body = plEnd()
				}
				if !p.Publish(plEvent(s, i, body)) {
					t.Errorf("stream %d seq %d dropped", s, i)
				}
			}
		})
	}
	wg.Wait()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tail := range []*plRecorder{a, b} {
		if dropped := plCheckAccounted(t, tail.got(), streams, perStream); dropped != 0 {
			t.Fatalf("diagnostics report %d drops, want none", dropped)
		}
		for _, n := range tail.batches {
			if n < 1 || n > batch {
				t.Fatalf("batch of %d events, want 1..%d", n, batch)
			}
		}
	}
	st := p.Stats()
	if st.Published != 2*streams*perStream || st.Delivered != st.Published || st.Dropped != 0 || st.QueueDepth != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPipelineDropsAreAccountedPerStream(t *testing.T) {
	// Many producers overrun a small queue while the tail is stalled, then keep going
	// while it drains: per stream, delivered events plus diagnostics must account for
	// every sequence number, and the diagnostics for every drop.
	const streams, perStream = 8, 3000
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithMaxQueueEvents(64), WithBatchSize(16),
		WithFlushInterval(time.Millisecond))
	var wg sync.WaitGroup
	var published atomic.Int64
	for s := range streams {
		wg.Go(func() {
			for i := range uint64(perStream) {
				body := plEnd()
				if i%4 == 0 {
					body = plOpen()
				}
				p.Publish(plEvent(s, i, body))
				if published.Add(1) == streams*perStream/2 {
					close(g.release) // let the tail run for the second half
				}
			}
		})
	}
	wg.Wait()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Dropped == 0 {
		t.Fatal("no drops: the test did not overrun the queue")
	}
	reported := plCheckAccounted(t, g.got(), streams, perStream)
	if reported != st.Dropped || st.UntrackedDrops != 0 {
		t.Fatalf("diagnostics report %d drops, stats say %d (untracked %d)", reported, st.Dropped, st.UntrackedDrops)
	}
	if st.Published+st.Dropped != streams*perStream || st.Delivered != st.Published+st.Diagnostics {
		t.Fatalf("stats do not add up: %+v", st)
	}
}

func TestPipelineCountBound(t *testing.T) {
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithMaxQueueEvents(10), WithFlushInterval(time.Millisecond))
	defer close(g.release)
	accepted := 0
	for i := range 25 {
		if p.Publish(plEvent(i, 0, plEnd())) { // one stream each: no diagnostics take room
			accepted++
		}
	}
	if accepted != 10 {
		t.Fatalf("accepted %d events, want 10", accepted)
	}
	if st := p.Stats(); st.QueueDepth != 10 || st.Dropped != 15 || st.Published != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPipelineByteBound(t *testing.T) {
	e := plEvent(0, 0, &Log{Message: strings.Repeat("x", 1000)})
	size := e.Size()
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithMaxQueueBytes(5*size+size/2), WithFlushInterval(time.Millisecond))
	defer close(g.release)
	accepted := 0
	for i := range 20 {
		if p.Publish(plEvent(i, 0, e.Body)) {
			accepted++
		}
	}
	if accepted != 5 {
		t.Fatalf("accepted %d events of %d bytes under a %d-byte bound, want 5", accepted, size, 5*size+size/2)
	}
	// Small events still fit in the remaining room.
	if !p.Publish(plEvent(99, 0, &Log{})) {
		t.Fatal("a small event was dropped although it fits")
	}
}

func TestPipelineOversizedEventIsDroppedAndReported(t *testing.T) {
	r := &plRecorder{}
	p := NewPipeline([]Tail{r}, WithMaxQueueBytes(1000), WithFlushInterval(time.Millisecond))
	defer p.Shutdown(context.Background())
	big := plEvent(1, 0, &Log{Message: strings.Repeat("x", 2000)})
	big.Time = time.Time{}
	// The worker waits for a first event: the drop alone must wake it.
	q := p.tails[0]
	plWaitUntil(t, "the worker to wait", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.state == workerIdle
	})
	if p.Publish(big) {
		t.Fatal("an event larger than the byte bound was accepted")
	}
	// Nothing else is published: the worker must report the drop on its own.
	plWaitUntil(t, "the diagnostic", func() bool { return r.count() == 1 })
	got := r.got()[0]
	if d, ok := got.Body.(*StreamDiagnostic); !ok || d.DroppedEvents != 1 || got.Sequence != 0 ||
		got.StreamID != plStream(1) || !got.Time.IsZero() {
		t.Fatalf("got %+v, want a diagnostic of 1 drop at seq 0 of stream 1", got)
	}
}

func TestPipelineDropPolicyKeepsRoomForAnnouncedSpans(t *testing.T) {
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithMaxQueueEvents(20), WithFlushInterval(time.Millisecond))
	for i := range 18 { // 90% of the queue
		if !p.Publish(plEvent(1, uint64(i), plEnd())) {
			t.Fatalf("event %d dropped below the 90%% mark", i)
		}
	}
	for _, c := range []struct {
		stream int
		body   Body
		want   bool
	}{
		{2, plOpen(), false},                // new span: dropped above 90%
		{3, &Onset{}, false},                // new invocation: dropped above 90%
		{4, plEnd(), true},                  // end of an announced span: uses the reserve
		{5, &UpdateName{Name: "x"}, true},   // uses the reserve
		{6, plEnd(), false},                 // queue full: everything is dropped
		{7, &Outcome{Outcome: "ok"}, false}, // queue full
	} {
		if got := p.Publish(plEvent(c.stream, 0, c.body)); got != c.want {
			t.Errorf("Publish(%T) of stream %d = %v, want %v", c.body, c.stream, got, c.want)
		}
	}
	close(g.release)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	diags := map[StreamID]uint64{}
	for _, e := range g.got() {
		if d, ok := e.Body.(*StreamDiagnostic); ok {
			diags[e.StreamID] = d.DroppedEvents
		}
	}
	want := map[StreamID]uint64{plStream(2): 1, plStream(3): 1, plStream(6): 1, plStream(7): 1}
	if fmt.Sprint(diags) != fmt.Sprint(want) {
		t.Fatalf("diagnostics %v, want %v", diags, want)
	}
}

func TestPipelineDiagnosticComesRightBeforeTheStreamsNextEvent(t *testing.T) {
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithMaxQueueEvents(20), WithFlushInterval(time.Millisecond))
	for i := range 18 {
		p.Publish(plEvent(1, uint64(i), plEnd()))
	}
	if p.Publish(plEvent(2, 0, plOpen())) {
		t.Fatal("SpanOpen accepted above 90%")
	}
	if p.Publish(plEvent(2, 1, plOpen())) {
		t.Fatal("SpanOpen accepted above 90%")
	}
	if !p.Publish(plEvent(2, 2, plEnd())) {
		t.Fatal("SpanEndData dropped although the reserve has room for it and its diagnostic")
	}
	if st := p.Stats(); st.QueueDepth != 20 || st.Diagnostics != 1 {
		t.Fatalf("stats %+v, want 20 queued including one diagnostic", st)
	}
	close(g.release)
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := g.got()
	if len(got) != 20 {
		t.Fatalf("got %d events, want 20", len(got))
	}
	d, last := got[18], got[19]
	db, ok := d.Body.(*StreamDiagnostic)
	if !ok || db.DroppedEvents != 2 || d.Sequence != 1 || d.StreamID != plStream(2) || d.TraceID != plEvent(2, 0, nil).TraceID {
		t.Fatalf("event before seq 2 is %+v (%+v), want a diagnostic of 2 drops with Sequence 1", d, d.Body)
	}
	if !d.Time.Equal(plEvent(2, 1, nil).Time) {
		t.Fatalf("diagnostic time %v, want that of the last dropped event", d.Time)
	}
	if last.Sequence != 2 || last.StreamID != plStream(2) {
		t.Fatalf("last event %+v, want seq 2 of stream 2", last)
	}
	_ = p.Shutdown(context.Background())
}

func TestPipelineDiagnosticOfAQuietStreamComesWithForceFlush(t *testing.T) {
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithMaxQueueEvents(5), WithFlushInterval(time.Hour))
	for i := range uint64(10) {
		p.Publish(plEvent(1, i, plEnd()))
	}
	close(g.release)
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := plCheckAccounted(t, g.got(), 1, 10); n != 5 {
		t.Fatalf("diagnostics report %d drops, want 5", n)
	}
	_ = p.Shutdown(context.Background())
}

func TestPipelineUntrackedDrops(t *testing.T) {
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithMaxQueueEvents(1), WithFlushInterval(time.Millisecond))
	defer close(g.release)
	p.Publish(plEvent(0, 0, plEnd()))
	for s := 1; s <= maxDropStreams+75; s++ {
		p.Publish(plEvent(s, 0, plEnd()))
	}
	if st := p.Stats(); st.Dropped != maxDropStreams+75 || st.UntrackedDrops != 75 {
		t.Fatalf("stats %+v, want %d dropped, 75 untracked", st, maxDropStreams+75)
	}
}

func TestPipelineSlowTailDoesNotStallFastTail(t *testing.T) {
	slow, fast := newPlGate(), &plRecorder{}
	p := NewPipeline([]Tail{slow, fast}, WithBatchSize(8), WithFlushInterval(time.Millisecond))
	for i := range uint64(100) {
		p.Publish(plEvent(1, i, plEnd()))
	}
	plWaitUntil(t, "the fast tail to get every event", func() bool { return fast.count() == 100 })
	<-slow.entered // the slow tail is stuck in its first Consume all along
	if slow.count() != 0 {
		t.Fatal("the slow tail was not stuck")
	}
	close(slow.release)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if slow.count() != 100 {
		t.Fatalf("slow tail got %d events after Shutdown, want 100", slow.count())
	}
}

func TestPipelineHandlers(t *testing.T) {
	var mu sync.Mutex
	seen := map[Kind]int{}
	note := func(k Kind) { mu.Lock(); seen[k]++; mu.Unlock() }
	h := Handlers{
		SpanOpen:         func(_ context.Context, _ Event, b *SpanOpen) { note(b.Kind()) },
		UpdateName:       func(_ context.Context, _ Event, b *UpdateName) { note(b.Kind()) },
		Attributes:       func(_ context.Context, _ Event, b *Attributes) { note(b.Kind()) },
		Status:           func(_ context.Context, _ Event, b *StatusUpdate) { note(b.Kind()) },
		SpanEnd:          func(_ context.Context, _ Event, b *SpanEndData) { note(b.Kind()) },
		Heartbeat:        func(_ context.Context, _ Event, b *Heartbeat) { note(b.Kind()) },
		Onset:            func(_ context.Context, _ Event, b *Onset) { note(b.Kind()) },
		Outcome:          func(_ context.Context, _ Event, b *Outcome) { note(b.Kind()) },
		Log:              func(_ context.Context, _ Event, b *Log) { note(b.Kind()) },
		Exception:        func(_ context.Context, _ Event, b *Exception) { note(b.Kind()) },
		Return:           func(_ context.Context, _ Event, b *Return) { note(b.Kind()) },
		StreamDiagnostic: func(_ context.Context, _ Event, b *StreamDiagnostic) { note(b.Kind()) },
	}
	partial := Handlers{Log: func(_ context.Context, _ Event, b *Log) { note(KindUnknown) }}
	p := NewPipeline([]Tail{h, partial})
	bodies := []Body{&Onset{}, plOpen(), &UpdateName{}, &Attributes{}, &StatusUpdate{}, &Heartbeat{},
		&Log{}, &Exception{}, &Return{}, plEnd(), &StreamDiagnostic{}, &Outcome{}, nil}
	for i, b := range bodies {
		p.Publish(plEvent(1, uint64(i), b))
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for k := KindSpanOpen; k <= KindStreamDiagnostic; k++ {
		if seen[k] != 1 {
			t.Errorf("handler of %v called %d times, want 1", k, seen[k])
		}
	}
	if seen[KindUnknown] != 1 {
		t.Errorf("partial Handlers: Log handler called %d times, want 1", seen[KindUnknown])
	}
}

// plFlushTail records when the pipeline asks it to flush or shut down.
type plFlushTail struct {
	plRecorder
	flushedAt   atomic.Int64 // events consumed when ForceFlush was called
	flushes     atomic.Int32
	shutdowns   atomic.Int32
	shutdownAt  atomic.Int64
	flushErr    error
	shutdownErr error
}

func (f *plFlushTail) ForceFlush(context.Context) error {
	f.flushes.Add(1)
	f.flushedAt.Store(int64(f.count()))
	return f.flushErr
}

func (f *plFlushTail) Shutdown(context.Context) error {
	f.shutdowns.Add(1)
	f.shutdownAt.Store(int64(f.count()))
	return f.shutdownErr
}

func TestPipelineForceFlushDeliversThenFlushesTails(t *testing.T) {
	f := &plFlushTail{}
	plain := &plRecorder{}
	p := NewPipeline([]Tail{f, plain}, WithFlushInterval(time.Hour))
	defer p.Shutdown(context.Background())
	for i := range uint64(10) {
		p.Publish(plEvent(1, i, plEnd()))
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.flushes.Load() != 1 || f.flushedAt.Load() != 10 || plain.count() != 10 {
		t.Fatalf("flushes %d after %d events (plain tail %d), want 1 after 10",
			f.flushes.Load(), f.flushedAt.Load(), plain.count())
	}
	f.flushErr = errors.New("disk full")
	if err := p.ForceFlush(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("ForceFlush = %v, want the tail's error", err)
	}
}

func TestPipelineForceFlushHonoursDeadline(t *testing.T) {
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithFlushInterval(time.Millisecond))
	p.Publish(plEvent(1, 0, plEnd()))
	<-g.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.ForceFlush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ForceFlush with a stuck tail = %v, want DeadlineExceeded", err)
	}
	close(g.release)
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPipelineShutdownDrainsThenShutsTailsDownOnce(t *testing.T) {
	f := &plFlushTail{}
	p := NewPipeline([]Tail{f}, WithFlushInterval(time.Hour))
	for i := range uint64(10) {
		p.Publish(plEvent(1, i, plEnd()))
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.shutdowns.Load() != 1 || f.shutdownAt.Load() != 10 {
		t.Fatalf("tail shut down %d times after %d events, want once after 10", f.shutdowns.Load(), f.shutdownAt.Load())
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v, want nil", err)
	}
	if f.shutdowns.Load() != 1 {
		t.Fatal("second Shutdown shut the tail down again")
	}
	if p.Publish(plEvent(1, 10, plEnd())) {
		t.Fatal("Publish after Shutdown reported success")
	}
	if st := p.Stats(); st.Dropped != 1 || st.Published != 10 {
		t.Fatalf("stats %+v, want the late event counted as dropped", st)
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatalf("ForceFlush after Shutdown = %v, want nil", err)
	}
}

func TestPipelineShutdownReportsTailError(t *testing.T) {
	f := &plFlushTail{shutdownErr: errors.New("connection reset")}
	p := NewPipeline([]Tail{f})
	if err := p.Shutdown(context.Background()); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Shutdown = %v, want the tail's error", err)
	}
}

func TestPipelineShutdownHonoursDeadline(t *testing.T) {
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithBatchSize(1), WithFlushInterval(time.Millisecond))
	for i := range uint64(5) {
		p.Publish(plEvent(1, i, plEnd()))
	}
	<-g.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stuck tail = %v, want DeadlineExceeded", err)
	}
	close(g.release)
	// The batch in progress completes; the rest is dropped, not delivered late.
	plWaitUntil(t, "the worker to discard the rest", func() bool { return p.Stats().QueueDepth == 0 })
	if st := p.Stats(); st.Delivered != 1 || st.Dropped != 4 {
		t.Fatalf("stats %+v, want 1 delivered and 4 dropped", st)
	}
	if p.Publish(plEvent(1, 5, plEnd())) {
		t.Fatal("Publish after Shutdown reported success")
	}
}

func TestPipelineBatchFullTriggersDelivery(t *testing.T) {
	r := &plRecorder{}
	p := NewPipeline([]Tail{r}, WithBatchSize(4), WithFlushInterval(time.Hour))
	defer p.Shutdown(context.Background())
	for i := range uint64(4) {
		p.Publish(plEvent(1, i, plEnd()))
	}
	plWaitUntil(t, "a full batch", func() bool { return r.count() == 4 })
	p.Publish(plEvent(1, 4, plEnd()))
	time.Sleep(20 * time.Millisecond) // a partial batch waits for FlushInterval (1h here)
	if r.count() != 4 {
		t.Fatal("a partial batch was delivered before FlushInterval")
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.count() != 5 || fmt.Sprint(r.batches) != "[4 1]" {
		t.Fatalf("got batches %v, want [4 1]", r.batches)
	}
}

func TestPipelineFlushInterval(t *testing.T) {
	r := &plRecorder{}
	const interval = 30 * time.Millisecond
	p := NewPipeline([]Tail{r}, WithFlushInterval(interval))
	defer p.Shutdown(context.Background())
	start := time.Now()
	p.Publish(plEvent(1, 0, plOpen()))
	plWaitUntil(t, "the flush interval to deliver one event", func() bool { return r.count() == 1 })
	if el := time.Since(start); el < interval {
		t.Fatalf("delivered after %v, before the %v flush interval", el, interval)
	}
}

func TestPipelineConsumeTimeout(t *testing.T) {
	var deadline atomic.Int64
	start := time.Now()
	tail := TailFunc(func(ctx context.Context, _ []Event) error {
		if d, ok := ctx.Deadline(); ok {
			deadline.Store(int64(d.Sub(start)))
		}
		<-ctx.Done()
		return ctx.Err()
	})
	p := NewPipeline([]Tail{tail}, WithConsumeTimeout(30*time.Millisecond),
		WithLogger(slog.New(slog.DiscardHandler)))
	p.Publish(plEvent(1, 0, plEnd()))
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, el := time.Duration(deadline.Load()), time.Since(start); d < 30*time.Millisecond || d > el {
		t.Fatalf("Consume deadline %v after the start, want one that passed within the %v the flush took", d, el)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("ForceFlush took %v with a 30ms ConsumeTimeout", el)
	}
	if st := p.Stats(); st.Failed != 1 || st.Delivered != 1 {
		t.Fatalf("stats %+v, want 1 failed", st)
	}
	_ = p.Shutdown(context.Background())
}

// plLogCounter counts log records and keeps the last one's text.
type plLogCounter struct {
	mu      sync.Mutex
	records int
	last    string
}

func (h *plLogCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *plLogCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records++
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	h.last = b.String()
	return nil
}
func (h *plLogCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *plLogCounter) WithGroup(string) slog.Handler      { return h }

func TestPipelineConsumeErrorsAreCountedAndLoggedRateLimited(t *testing.T) {
	h := &plLogCounter{}
	calls := 0
	tail := TailFunc(func(context.Context, []Event) error {
		calls++
		if calls%2 == 0 {
			panic("tail bug")
		}
		return errors.New("collector unavailable")
	})
	p := NewPipeline([]Tail{tail}, WithBatchSize(1), WithLogger(slog.New(h)))
	for i := range uint64(50) {
		p.Publish(plEvent(1, i, plEnd()))
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Failed != 50 || st.Delivered != 50 {
		t.Fatalf("stats %+v, want 50 failed", st)
	}
	if h.records != 1 || !strings.Contains(h.last, "collector unavailable") {
		t.Fatalf("%d log records (last %q), want 1 naming the error", h.records, h.last)
	}
}

func TestPipelineOptions(t *testing.T) {
	p := NewPipeline([]Tail{&plRecorder{}}, WithMaxQueueEvents(-1), WithMaxQueueBytes(0),
		WithBatchSize(0), WithFlushInterval(-time.Second), WithConsumeTimeout(0), WithLogger(nil))
	q := p.tails[0]
	if q.maxEvents != DefaultMaxQueueEvents || q.maxBytes != DefaultMaxQueueBytes ||
		q.batchSize != DefaultBatchSize || q.flushInterval != DefaultFlushInterval ||
		q.consumeTimeout != DefaultConsumeTimeout || q.log != slog.Default() {
		t.Fatalf("defaults not applied: %+v", q)
	}
	_ = p.Shutdown(context.Background())

	l := slog.New(slog.DiscardHandler)
	p = NewPipeline([]Tail{&plRecorder{}}, WithMaxQueueEvents(100), WithMaxQueueBytes(5000),
		WithBatchSize(1000), WithFlushInterval(time.Second), WithConsumeTimeout(time.Minute), WithLogger(l))
	q = p.tails[0]
	if q.maxEvents != 100 || q.softEvents != 90 || q.maxBytes != 5000 || q.softBytes != 4500 ||
		q.batchSize != 100 || q.flushInterval != time.Second || q.consumeTimeout != time.Minute || q.log != l {
		t.Fatalf("options not applied (batch size capped to the queue): %+v", q)
	}
	_ = p.Shutdown(context.Background())
}

func TestPipelineWithoutTails(t *testing.T) {
	p := NewPipeline([]Tail{nil})
	if !p.Publish(plEvent(1, 0, plEnd())) {
		t.Fatal("Publish with no tails reported a drop")
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st != (PipelineStats{}) || len(p.StatsByTail()) != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPipelineStatsByTail(t *testing.T) {
	g, r := newPlGate(), &plRecorder{}
	p := NewPipeline([]Tail{g, r}, WithMaxQueueEvents(2), WithFlushInterval(time.Millisecond))
	for i := range 3 {
		p.Publish(plEvent(i, 0, plEnd()))
		plWaitUntil(t, "the fast tail", func() bool { return r.count() == i+1 })
	}
	// A batch is counted as delivered once Consume returned.
	plWaitUntil(t, "the fast tail's count", func() bool { return p.StatsByTail()[1].Delivered == 3 })
	byTail := p.StatsByTail()
	if byTail[0].Dropped != 1 || byTail[0].QueueDepth != 2 || byTail[1].Dropped != 0 || byTail[1].Delivered != 3 {
		t.Fatalf("stats by tail %+v", byTail)
	}
	close(g.release)
	_ = p.Shutdown(context.Background())
	if st := p.Stats(); st.Published != 5 || st.Dropped != 1 || st.Delivered != 6 || st.Diagnostics != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPublishDoesNotAllocate(t *testing.T) {
	if plRaceEnabled {
		t.Skip("the race detector allocates")
	}
	p := NewPipeline([]Tail{TailFunc(func(context.Context, []Event) error { return nil })})
	defer p.Shutdown(context.Background())
	e := plBenchEvent()
	if n := testing.AllocsPerRun(1000, func() { p.Publish(e) }); n != 0 {
		t.Fatalf("Publish allocates %v times per event, want 0", n)
	}
}

func TestDropJournalDrainsReadySlotsInOrderAndSkipsUnwritten(t *testing.T) {
	var j dropJournal
	var got []uint64
	collect := func(d *droppedEvent) { got = append(got, d.seq) }
	e := plEvent(1, 0, plEnd())
	// Slot 0 is reserved by a producer that has not finished writing it.
	j.head.Add(1)
	for seq := range uint64(3) {
		e.Sequence = 10 + seq
		if !j.record(&e) {
			t.Fatal("record failed on an empty journal")
		}
	}
	j.drain(collect)
	if fmt.Sprint(got) != "[10 11 12]" || j.tail.Load() != 0 || !j.pending() {
		t.Fatalf("drained %v, tail %d; want [10 11 12] drained behind the unwritten slot 0", got, j.tail.Load())
	}
	// The producer of slot 0 finishes; the next drain takes it alone and frees all.
	j.slots[0].event = dropped(&Event{Sequence: 9})
	j.slots[0].mark.Store(1) // ticket 0, written
	got = nil
	j.drain(collect)
	if fmt.Sprint(got) != "[9]" || j.tail.Load() != 4 || j.pending() {
		t.Fatalf("drained %v, tail %d; want [9] and all 4 slots freed", got, j.tail.Load())
	}
	// A full journal refuses, and takes records again once drained.
	for range journalSlots {
		if !j.record(&e) {
			t.Fatal("record failed with room")
		}
	}
	if j.record(&e) {
		t.Fatal("record succeeded on a full journal")
	}
	j.drain(func(*droppedEvent) {})
	if !j.record(&e) {
		t.Fatal("record failed after drain")
	}
}

func TestPipelineDropsWithoutTheLockAreAccounted(t *testing.T) {
	// The tail is stuck and the queue full: concurrent producers drop through the
	// journal while the lock is busy, and through the lock otherwise. Each stream's
	// drops must still be reported in order, before its next accepted event.
	const streams, perStream = 64, 400
	g := newPlGate()
	p := NewPipeline([]Tail{g}, WithMaxQueueEvents(8), WithBatchSize(4), WithFlushInterval(time.Millisecond))
	q := p.tails[0]
	var wg sync.WaitGroup
	for s := range streams {
		wg.Go(func() {
			for i := range uint64(perStream) {
				p.Publish(plEvent(s, i, plEnd()))
			}
		})
	}
	wg.Wait()
	if q.fill.Load() != fillFull {
		t.Fatalf("fill = %d with a stuck tail, want fillFull", q.fill.Load())
	}
	// One more drop under a held lock must go to the journal (emptied by Stats).
	p.Stats()
	q.mu.Lock()
	if p.Publish(plEvent(streams, 0, plEnd())) {
		t.Fatal("Publish into a full queue succeeded")
	}
	if !q.journal.pending() {
		t.Fatal("a drop while the lock was held did not go to the journal")
	}
	q.mu.Unlock()
	close(g.release)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := g.got()
	var mine []Event
	for _, e := range got {
		if e.StreamID != plStream(streams) {
			mine = append(mine, e)
		}
	}
	st := p.Stats()
	if reported := plCheckAccounted(t, mine, streams, perStream); reported+1 != st.Dropped {
		t.Fatalf("diagnostics report %d drops (+1 of the extra stream), stats %d", reported, st.Dropped)
	}
}

func TestDropRuns(t *testing.T) {
	var d dropRuns
	drop := func(stream int, seq uint64) bool {
		de := dropped(&Event{StreamID: plStream(stream), Sequence: seq, Time: time.Unix(5, 0)})
		if stream%2 == 0 {
			return d.addDropped(&de)
		}
		return d.addEvent(&Event{StreamID: plStream(stream), Sequence: seq, Time: time.Unix(5, 0)})
	}
	drop(1, 3)
	drop(1, 4)
	drop(2, 7) // stream 1 moves to the map
	drop(1, 5) // stream 1 back in the cache, its run continued
	if d.len() != 2 || !d.has(plStream(1)) || !d.has(plStream(2)) || d.has(plStream(3)) {
		t.Fatalf("runs %+v", d)
	}
	if r := d.take(plStream(2)); r.count != 1 || r.lastSeq != 7 { // from the map
		t.Fatalf("run of stream 2 = %+v", r)
	}
	if r := d.take(plStream(1)); r.count != 3 || r.lastSeq != 5 || r.lastTime != time.Unix(5, 0).UnixNano() {
		t.Fatalf("run of stream 1 = %+v", r)
	}
	if d.len() != 0 {
		t.Fatalf("%d runs left", d.len())
	}
	for s := range maxDropStreams {
		if !drop(s, 0) {
			t.Fatalf("stream %d not tracked below the limit", s)
		}
	}
	if drop(maxDropStreams, 0) {
		t.Fatal("a stream beyond the limit was tracked")
	}
	if !drop(0, 1) {
		t.Fatal("a tracked stream's run could not grow at the limit")
	}
	seen := map[StreamID]bool{}
	for d.len() > 0 {
		id, _ := d.pop()
		seen[id] = true
	}
	if len(seen) != maxDropStreams {
		t.Fatalf("popped %d runs, want %d", len(seen), maxDropStreams)
	}
	drop(1, 1)
	drop(2, 1)
	d.clear()
	if d.len() != 0 || d.has(plStream(1)) {
		t.Fatal("clear left runs")
	}
}

func TestPipelineDeliversAtOnceWhenFullByBytes(t *testing.T) {
	r := &plRecorder{}
	e := plEvent(1, 0, &Log{Message: strings.Repeat("x", 1000)})
	p := NewPipeline([]Tail{r}, WithMaxQueueBytes(3*e.Size()), WithFlushInterval(time.Hour))
	defer p.Shutdown(context.Background())
	for i := range uint64(4) { // the fourth does not fit
		e.Sequence = i
		p.Publish(e)
	}
	// Far from a full batch, but full by bytes: the drop wakes the worker.
	plWaitUntil(t, "delivery of a queue full by bytes", func() bool { return r.count() >= 3 })
}
