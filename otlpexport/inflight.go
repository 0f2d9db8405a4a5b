package otlpexport

import (
	"context"
	"fmt"
	"sync/atomic"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"golang.org/x/sync/semaphore"
)

// signal tells logs from traces.
type signal uint8

const (
	signalLogs signal = iota
	signalTraces
)

// request is one export handed to a sender: a logs or a traces request, never both.
type request struct {
	signal signal
	logs   *collogspb.ExportLogsServiceRequest
	traces *coltracepb.ExportTraceServiceRequest
	wire   []byte   // the request in wire format when it was encoded so (AppendSpansWire)
	buf    *wireBuf // the buffer wire was cut from, when it is reused after delivery
	items  int      // log records or spans in it
	bytes  int      // its protobuf size, computed (and cached in the messages) when encoded
	weight int64    // its share of the byte bound: bytes, at most the bound
}

// inFlight bounds the requests handed to the senders and not finished yet (being
// sent, retried, or waiting for their sender), by count and by bytes. It is the
// exporter's push-back: a request waits for room before it is handed over, so a slow
// receiver slows the caller instead of filling a queue. Both bounds are
// semaphore.Weighted, which serve waiters first come, first served.
type inFlight struct {
	maxCount, maxBytes int64
	count, bytes       *semaphore.Weighted
	requests, items    atomic.Int64
	nbytes             atomic.Int64
}

func newInFlight(maxCount, maxBytes int) *inFlight {
	return &inFlight{
		maxCount: int64(maxCount), maxBytes: int64(maxBytes),
		count: semaphore.NewWeighted(int64(maxCount)), bytes: semaphore.NewWeighted(int64(maxBytes)),
	}
}

// acquire waits until r fits, or ctx ends. A request larger than the byte bound takes
// all of it, so that nothing is unsendable only because of its size.
func (f *inFlight) acquire(ctx context.Context, r *request) error {
	r.weight = min(int64(r.bytes), f.maxBytes)
	if err := f.count.Acquire(ctx, 1); err != nil {
		return err
	}
	if err := f.bytes.Acquire(ctx, r.weight); err != nil {
		f.count.Release(1)
		return err
	}
	f.requests.Add(1)
	f.items.Add(int64(r.items))
	f.nbytes.Add(int64(r.bytes))
	return nil
}

// release frees the room of a finished request.
func (f *inFlight) release(r *request) {
	f.requests.Add(-1)
	f.items.Add(-int64(r.items))
	f.nbytes.Add(-int64(r.bytes))
	f.bytes.Release(r.weight)
	f.count.Release(1)
}

// drain waits until every request handed over before the call is finished, or ctx
// ends. Later requests wait behind it (the semaphore is fair), so a steady stream of
// them cannot delay it for ever.
func (f *inFlight) drain(ctx context.Context) error {
	if err := f.count.Acquire(ctx, f.maxCount); err != nil {
		return fmt.Errorf("%d requests (%d items) still in flight: %w", f.requests.Load(), f.items.Load(), err)
	}
	f.count.Release(f.maxCount)
	return nil
}

// sender is one sending goroutine with its connections. Its channel holds at most
// the requests in flight (their room was acquired before), so a send on it never
// waits; it carries them in order, which keeps the events of a stream in sequence.
type sender struct {
	in           chan *request
	logs, traces *client
	next         *request // taken from in but of the other signal: the next batch's first
}

// nextBatch waits for a request and returns it with those handed right behind it
// that are of the same signal and fit, all together, in maxBytes: under a backlog
// the sender sends fewer, larger requests. It returns nil once the input is closed
// and empty. batch is reused for the result.
func (snd *sender) nextBatch(maxBytes int, batch []*request) []*request {
	batch = batch[:0]
	first := snd.next
	snd.next = nil
	if first == nil {
		var ok bool
		if first, ok = <-snd.in; !ok {
			return nil
		}
	}
	batch = append(batch, first)
	total := first.bytes
	for {
		select {
		case r, ok := <-snd.in:
			if !ok {
				return batch
			}
			if r.signal != first.signal || total+r.bytes > maxBytes {
				snd.next = r
				return batch
			}
			batch = append(batch, r)
			total += r.bytes
		default:
			return batch
		}
	}
}
