package otlpexport

import (
	"sync"
	"sync/atomic"
)

// wireBuf is a buffer that encoded requests are cut from, shared by the requests of one
// encoding and reused once they were all delivered: a span's encoding then costs no
// allocation, and the garbage collector runs less often. A request that fails keeps
// its buffer out of the pool (the transport may still hold it while the call is torn
// down), and so does one dropped before it was sent; the collector reclaims those.
type wireBuf struct {
	b    []byte
	refs atomic.Int32 // requests cut from b and not delivered yet
}

// maxPooledWireBuf is the largest buffer kept for reuse: a rare huge request should
// not pin its memory for ever.
const maxPooledWireBuf = 4 << 20

var wireBufs = sync.Pool{New: func() any { return new(wireBuf) }}

// getWireBuf returns an empty buffer from the pool.
func getWireBuf() *wireBuf {
	w := wireBufs.Get().(*wireBuf)
	w.b = w.b[:0]
	return w
}

// delivered accounts for one request cut from w that was delivered; the last one
// returns w to the pool.
func (w *wireBuf) delivered() {
	if w != nil && w.refs.Add(-1) == 0 && cap(w.b) <= maxPooledWireBuf {
		wireBufs.Put(w)
	}
}
