package otlpexport

import (
	"context"
	"sync"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// signal tells logs from traces.
type signal uint8

const (
	signalLogs signal = iota
	signalTraces
)

// request is one queued export: a logs or a traces request, never both.
type request struct {
	signal signal
	logs   *collogspb.ExportLogsServiceRequest
	traces *coltracepb.ExportTraceServiceRequest
	wire   []byte // the request in wire format when it was queued so (AppendSpansWire)
	items  int    // log records or spans in it
	bytes  int    // its protobuf size, computed (and cached in the messages) when queued
}

// budget bounds all queues of an exporter together, by request count and bytes.
// A request holds its share from enqueue until its sender is done with it.
type budget struct {
	mu                 sync.Mutex
	maxCount, maxBytes int
	count, bytes       int
}

// take reserves room for a request of n bytes; false when it does not fit. A request
// larger than the byte bound still fits into an empty queue, so that nothing is
// unsendable only because of its size.
func (b *budget) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.count >= b.maxCount || (b.bytes+n > b.maxBytes && b.count > 0) {
		return false
	}
	b.count++
	b.bytes += n
	return true
}

func (b *budget) give(n int) {
	b.mu.Lock()
	b.count--
	b.bytes -= n
	b.mu.Unlock()
}

func (b *budget) depth() (count, bytes int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count, b.bytes
}

// shard is the FIFO queue of one sender. Requests leave in the order they came, so the
// events of a stream, which always go to the same shard, keep their sequence order.
type shard struct {
	mu     sync.Mutex
	items  []*request
	head   int
	closed bool
	wake   chan struct{} // one pending signal for the sender
	// enq counts requests ever pushed, done those the sender finished; ForceFlush
	// waits until done reaches the enq it saw. progress is closed (and replaced) each
	// time done grows.
	enq, done uint64
	progress  chan struct{}
}

func newShard() *shard {
	return &shard{wake: make(chan struct{}, 1), progress: make(chan struct{})}
}

// push appends r; false when the shard is closed.
func (s *shard) push(r *request) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.items = append(s.items, r)
	s.enq++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// popBatch waits for a request and returns it with the requests queued right behind
// it that are of the same signal and fit, all together, in maxBytes: under a backlog
// the sender sends fewer, larger requests. It returns nil once the shard is closed and
// empty. batch is reused for the result.
func (s *shard) popBatch(maxBytes int, batch []*request) []*request {
	batch = batch[:0]
	for {
		s.mu.Lock()
		if s.head < len(s.items) {
			first := s.items[s.head]
			total := first.bytes
			for s.head < len(s.items) {
				r := s.items[s.head]
				if len(batch) > 0 && (r.signal != first.signal || total+r.bytes > maxBytes) {
					break
				}
				if len(batch) > 0 {
					total += r.bytes
				}
				batch = append(batch, r)
				s.items[s.head] = nil
				s.head++
			}
			if s.head == len(s.items) {
				s.items, s.head = s.items[:0], 0
			}
			s.mu.Unlock()
			return batch
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil
		}
		<-s.wake
	}
}

// finish records that the sender is done with n requests.
func (s *shard) finish(n int) {
	s.mu.Lock()
	s.done += uint64(n)
	close(s.progress)
	s.progress = make(chan struct{})
	s.mu.Unlock()
}

// close stops further pushes; the sender still drains what is queued.
func (s *shard) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// mark returns how many requests were pushed so far.
func (s *shard) mark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enq
}

// waitDone waits until the sender finished the first n requests, or ctx ends.
func (s *shard) waitDone(ctx context.Context, n uint64) error {
	for {
		s.mu.Lock()
		done, ch := s.done, s.progress
		s.mu.Unlock()
		if done >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
