package otlpexport

import (
	"sync"
	"sync/atomic"
)

// wireBuf is a buffer that encoded requests are cut from, shared by the requests of one
// encoding and reused once they were all delivered: a span's encoding then costs no
// allocation, and the garbage collector runs less often. A request that fails keeps
// its buffer out of reuse (the transport may still hold it while the call is torn
// down), and so does one dropped before it was sent; the collector reclaims those.
type wireBuf struct {
	b    []byte
	refs atomic.Int32 // requests cut from b and not delivered yet
}

// Delivered buffers are kept in two tiers. The first, wireBufsKept, survives garbage
// collections: a busy application collects every few megabytes allocated, which
// would empty a sync.Pool between two batches, so that each batch allocated its
// buffer anew (a large object, zeroed, then returned to the OS by the scavenger).
// It holds up to maxKeptWireBufs buffers of at most maxKeptWireBuf bytes (as many as
// the default number of requests in flight), so it pins a few megabytes at most.
// Bigger buffers, up to maxPooledWireBuf, and those it has no room for go to the
// sync.Pool, which the collector may empty.
const (
	maxKeptWireBufs  = DefaultMaxInFlight
	maxKeptWireBuf   = 1 << 20
	maxPooledWireBuf = 4 << 20
)

var (
	wireBufsKept = make(chan *wireBuf, maxKeptWireBufs)
	wireBufs     = sync.Pool{New: func() any { return new(wireBuf) }}
)

// getWireBuf returns an empty buffer, a delivered one when there is one.
func getWireBuf() *wireBuf {
	var w *wireBuf
	select {
	case w = <-wireBufsKept:
	default:
		w = wireBufs.Get().(*wireBuf)
	}
	w.b = w.b[:0]
	return w
}

// delivered accounts for one request cut from w that was delivered; the last one
// returns w for reuse.
func (w *wireBuf) delivered() {
	if w == nil || w.refs.Add(-1) != 0 {
		return
	}
	if cap(w.b) <= maxKeptWireBuf {
		select {
		case wireBufsKept <- w:
			return
		default:
		}
	}
	if cap(w.b) <= maxPooledWireBuf {
		wireBufs.Put(w)
	}
}
