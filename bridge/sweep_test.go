package bridge

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestEvery(t *testing.T) {
	var n atomic.Int32
	stop := Every(time.Millisecond, func() { n.Add(1) })
	deadline := time.Now().Add(10 * time.Second)
	for n.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("f was not called 3 times within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	stop() // a second stop does nothing
	after := n.Load()
	time.Sleep(20 * time.Millisecond)
	if n.Load() != after {
		t.Errorf("f called after stop returned")
	}
}

// TestAssemblerTail: the tail assembles spans, its sweep emits an orphan as
// unfinished, and Shutdown stops the sweep and emits what is still open.
func TestAssemblerTail(t *testing.T) {
	var spans atomic.Int32
	var unfinished atomic.Int32
	next := SpanConsumerFunc(func(_ context.Context, ss []Span) error {
		for _, s := range ss {
			spans.Add(1)
			if s.Unfinished {
				unfinished.Add(1)
			}
		}
		return nil
	})
	at := NewAssemblerTail(next, 5*time.Millisecond, nil, WithOrphanAfter(50*time.Millisecond))
	open := func(stream byte, span byte) Event {
		return Event{TraceID: [16]byte{stream}, StreamID: StreamID{stream}, SpanID: [8]byte{span},
			Time: time.Now(), Body: &SpanOpen{Name: "s"}}
	}
	if err := at.Consume(context.Background(), []Event{open(1, 1)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for unfinished.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the sweep did not emit the orphan within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	if err := at.Consume(context.Background(), []Event{open(2, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := at.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if spans.Load() != 2 || unfinished.Load() != 2 {
		t.Errorf("%d spans, %d unfinished; want 2 unfinished", spans.Load(), unfinished.Load())
	}
}
