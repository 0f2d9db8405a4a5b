package bridge

import (
	"context"
	"testing"
	"time"
)

// TestPublishBatchAllOrNothing: a batch that does not fit in every tail's queue is
// refused as a whole and counted as refused, neither dropped nor reported in the
// stream; one that fits goes to every tail.
func TestPublishBatchAllOrNothing(t *testing.T) {
	g := newPlGate()
	rec := &plRecorder{}
	p := NewPipeline([]Tail{rec, g}, WithMaxQueueEvents(10), WithFlushInterval(time.Millisecond))
	batch := func(stream, n int) []Event {
		out := make([]Event, n)
		for i := range out {
			out[i] = plEvent(stream, uint64(i), plEnd())
		}
		return out
	}
	if !p.PublishBatch(batch(1, 8)) {
		t.Fatal("a batch of 8 was refused by queues of 10")
	}
	// The gate holds its 8 events (being delivered count): 5 more do not fit there.
	if p.PublishBatch(batch(2, 5)) {
		t.Fatal("a batch of 5 was taken by a queue holding 8 of 10")
	}
	if !p.PublishBatch(batch(3, 2)) {
		t.Fatal("a batch of 2 was refused with room for 2")
	}
	for i, st := range p.StatsByTail() {
		if st.Refused != 5 || st.Dropped != 0 || st.Diagnostics != 0 || st.Published != 10 {
			t.Errorf("tail %d: stats %+v, want 10 published, 5 refused, nothing dropped", i, st)
		}
	}
	close(g.release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rec.count(); n != 10 {
		t.Errorf("the fast tail got %d events, want 10 (the refused batch reaches no tail)", n)
	}
	if p.PublishBatch(batch(4, 1)) {
		t.Error("PublishBatch after Shutdown was taken")
	}
	if st := p.Stats(); st.Refused != 2*6 || st.Dropped != 0 {
		t.Errorf("stats after Shutdown %+v, want 12 refused (6 per tail), none dropped", st)
	}
}
