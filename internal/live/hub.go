// Package live fans the bridge's lifecycle events out to live watchers over HTTP
// (GET /v1/live), for `stwbridge tail`.
//
// The Hub is a bridge.Tail. Consume copies each event into one shared ring of fixed
// size and wakes the watchers; each watcher (one HTTP request) reads the ring from its
// own position in its own goroutine, filters, encodes and writes. A watcher that falls
// more than a ring behind skips ahead to the oldest event still held, and is told so
// (a "skipped" line, counted in Stats.Skipped); a watcher whose writes stall longer than
// the write timeout is cut off. Neither ever slows Consume, which does no I/O and never
// waits on a watcher.
//
// The hub also remembers the spans that are open now (bounded), so that every line
// carries its span's current name, parent, start and service, and so that a watcher
// that connects sees the spans already in flight (span_open lines marked "replay"),
// read from that table a chunk at a time as the watcher's writes go through. At most
// Options.MaxWatchers watchers are served at once; more are refused with 503.
// Given the assembler's output (ConsumeSpans), it also tells watchers about spans the
// assembler declared unfinished because their producer went away.
package live

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/options"
)

// Defaults of the hub's options.
const (
	// DefaultMaxOpenSpans is how many open spans the hub remembers, in spans; beyond
	// it the oldest is forgotten (counted in Stats.Evicted).
	DefaultMaxOpenSpans = 65536
	// DefaultMaxWatchers is how many watchers may be connected at once; more are
	// refused with 503 and Retry-After (counted in Stats.Refused).
	DefaultMaxWatchers = 64
	// DefaultBuffer is the size of the ring of recent events, in events: how far a
	// watcher may fall behind before it skips ahead.
	DefaultBuffer = 4096
	// DefaultKeepAlive is how long a watcher's stream may stay silent before a
	// keep-alive line is written (a watcher may ask for another with ?keepalive=).
	DefaultKeepAlive = 15 * time.Second
	// DefaultWriteTimeout is how long one write to a watcher may take before the
	// watcher is cut off.
	DefaultWriteTimeout = 10 * time.Second
)

// retryAfter is the delay a watcher refused at MaxWatchers is told to wait.
const retryAfter = 5 * time.Second

// Options configure a Hub. Zero fields take the defaults.
type Options struct {
	// MaxOpenSpans is how many open spans the hub remembers; beyond it the oldest is
	// forgotten. Default DefaultMaxOpenSpans.
	MaxOpenSpans int
	// MaxWatchers is how many watchers may be connected at once. Default
	// DefaultMaxWatchers.
	MaxWatchers int

	// The ring size, keep-alive and write timeout are fixed (DefaultBuffer,
	// DefaultKeepAlive, DefaultWriteTimeout); tests make them small.
	buffer       int
	keepAlive    time.Duration
	writeTimeout time.Duration
}

// Option configures a Hub.
type Option func(*Options)

// WithMaxOpenSpans sets Options.MaxOpenSpans.
func WithMaxOpenSpans(spans int) Option { return func(o *Options) { o.MaxOpenSpans = spans } }

// WithMaxWatchers sets Options.MaxWatchers.
func WithMaxWatchers(n int) Option { return func(o *Options) { o.MaxWatchers = n } }

func resolveOptions(opts []Option) Options {
	o := options.Apply(opts)
	options.Positive(&o.MaxOpenSpans, DefaultMaxOpenSpans)
	options.Positive(&o.MaxWatchers, DefaultMaxWatchers)
	options.Positive(&o.buffer, DefaultBuffer)
	options.Positive(&o.keepAlive, DefaultKeepAlive)
	options.Positive(&o.writeTimeout, DefaultWriteTimeout)
	return o
}

// Hub is a bridge.Tail that serves the events it consumes to any number of watchers.
// A slow watcher skips ahead (counted) and never slows the bridge.
type Hub struct {
	opts Options

	mu       sync.Mutex
	ring     []entry
	head     uint64        // ring position of the next event written
	wake     chan struct{} // closed and replaced when events are written
	watchers map[*position]struct{}
	open     openTable
	opened   uint64 // spans added to open so far: the seq of the newest
	// The service.name of the last resource looked up: the events of a request share
	// their resource.
	svcRes *resource.Resource
	svc    string

	done     chan struct{} // closed by Shutdown
	doneOnce sync.Once

	sent    atomic.Uint64
	skipped atomic.Uint64
	cutOff  atomic.Uint64
	evicted atomic.Uint64
	refused atomic.Uint64
}

var (
	_ bridge.Tail         = (*Hub)(nil)
	_ bridge.Shutdowner   = (*Hub)(nil)
	_ bridge.SpanConsumer = (*Hub)(nil)
	_ http.Handler        = (*Hub)(nil)
)

type spanKey struct {
	trace trace.TraceID
	span  trace.SpanID
}

// position is where one watcher reads the ring; guarded by Hub.mu.
type position struct{ next uint64 }

// entry is one event in the ring, with what the hub knew of its span then.
type entry struct {
	ev     bridge.Event
	span   spanInfo
	replay bool
}

// NewHub returns a hub with no watchers.
func NewHub(opts ...Option) *Hub {
	o := resolveOptions(opts)
	return &Hub{
		opts:     o,
		ring:     make([]entry, o.buffer),
		wake:     make(chan struct{}),
		watchers: make(map[*position]struct{}),
		open:     newOpenTable(),
		done:     make(chan struct{}),
	}
}

// Consume hands events to the current watchers without waiting on any of them: it
// records them in the ring (when someone watches) and in the table of open spans, and
// returns. It never fails.
func (h *Hub) Consume(_ context.Context, events []bridge.Event) error {
	if len(events) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.watchers) == 0 {
		// Nobody to show them to: only the table of open spans needs the events, and a
		// CompleteSpan opens and ends its span at once, leaving the table as it was.
		for i := range events {
			if events[i].Kind() != bridge.KindCompleteSpan {
				h.track(&events[i])
			}
		}
		return nil
	}
	h.publish(expandCompleteSpans(events))
	return nil
}

// expandCompleteSpans returns events with each CompleteSpan (protocol 1.1) as the
// SpanOpen and SpanEndData it stands for, so that watchers see one model of a span's
// life; events itself when it holds none.
func expandCompleteSpans(events []bridge.Event) []bridge.Event {
	n := 0
	for i := range events {
		if events[i].Kind() == bridge.KindCompleteSpan {
			n++
		}
	}
	if n == 0 {
		return events
	}
	out := make([]bridge.Event, 0, len(events)+n)
	for _, e := range events {
		c, ok := e.Body.(*bridge.CompleteSpan)
		if !ok || c.Open == nil || c.End == nil {
			out = append(out, e)
			continue
		}
		open, end := e, e
		open.Time, open.Body, end.Body = c.Start, c.Open, c.End
		out = append(out, open, end)
	}
	return out
}

// publish records events; called with h.mu held.
func (h *Hub) publish(events []bridge.Event) {
	watching := len(h.watchers) > 0
	for i := range events {
		e := &events[i]
		si := h.track(e)
		if watching {
			slot := &h.ring[h.head%uint64(len(h.ring))]
			*slot = entry{ev: *e, span: si}
			h.head++
		}
	}
	if watching {
		close(h.wake)
		h.wake = make(chan struct{})
	}
}

// ConsumeSpans makes the hub a bridge.SpanConsumer of the assembler's output, so that
// watchers learn what only the assembler knows: a span reported unfinished (its
// producer crashed, or sent no end within the orphan timeout) that the hub still holds
// open reaches them as a span_end with unfinished set. Every other span is ignored:
// its events already came through Consume.
func (h *Hub) ConsumeSpans(_ context.Context, spans []bridge.Span) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ends []bridge.Event
	for i := range spans {
		sp := &spans[i]
		if !sp.Unfinished || h.open.get(spanKey{sp.TraceID, sp.SpanID}) == nil {
			continue
		}
		at := sp.End
		if at.IsZero() {
			at = time.Now()
		}
		ends = append(ends, bridge.Event{
			TraceID: sp.TraceID, SpanID: sp.SpanID, StreamID: sp.StreamID, Time: at,
			Resource: sp.Resource, Scope: sp.Scope,
			Body: &bridge.SpanEndData{Status: sp.Status, Unfinished: true},
		})
	}
	if len(ends) > 0 {
		h.publish(ends)
	}
	return nil
}

// track updates the table of open spans with e and returns what is known of e's span.
// Called with h.mu held.
func (h *Hub) track(e *bridge.Event) spanInfo {
	key := spanKey{e.TraceID, e.SpanID}
	var si spanInfo
	switch b := e.Body.(type) {
	case *bridge.SpanOpen:
		si = spanInfo{known: true, name: b.Name, parent: b.Parent, start: e.Time, kind: b.SpanKind, service: h.serviceOf(e.Resource)}
		h.remember(key, e, si, false)
	case *bridge.Onset:
		if st := h.lookup(key); st != nil {
			si = st.info
		} else {
			si = spanInfo{known: true, name: onsetName(b), parent: b.Parent, start: e.Time, kind: trace.SpanKindServer, service: h.serviceOf(e.Resource)}
			h.remember(key, e, si, true)
		}
	case *bridge.UpdateName:
		if st := h.lookup(key); st != nil {
			old := st.info.name
			st.info.name = b.Name
			si = st.info
			si.oldName = old
		}
	case *bridge.SpanEndData:
		si = h.open.take(key)
	case *bridge.Outcome:
		if st := h.lookup(key); st != nil {
			si = st.info
			if st.onset {
				h.open.remove(key)
			}
		}
	default:
		if st := h.lookup(key); st != nil {
			si = st.info
		}
	}
	if si.service == "" && e.Resource != nil {
		si.service = h.serviceOf(e.Resource)
	}
	return si
}

func (h *Hub) lookup(key spanKey) *openSpan { return h.open.get(key) }

func (h *Hub) remember(key spanKey, e *bridge.Event, si spanInfo, onset bool) {
	if st := h.open.get(key); st != nil { // a duplicate open: the latest wins
		st.open, st.info, st.onset = *e, si, onset
		return
	}
	for h.open.len() >= h.opts.MaxOpenSpans {
		h.open.remove(h.open.oldest().key)
		h.evicted.Add(1)
	}
	h.opened++
	h.open.add(openSpan{key: key, seq: h.opened, open: *e, info: si, onset: onset})
}

// serviceOf returns service.name of r, "" when r is nil or has none. Called with h.mu
// held.
func (h *Hub) serviceOf(r *resource.Resource) string {
	if r == nil {
		return ""
	}
	if r != h.svcRes {
		h.svcRes, h.svc = r, ""
		if v, ok := r.Set().Value("service.name"); ok {
			h.svc = v.Emit()
		}
	}
	return h.svc
}

// register adds a watcher, unless MaxWatchers are connected already: it returns its
// position in the ring and the replay that gives it the spans open now, nil when the
// watcher is refused.
func (h *Hub) register() (*position, *replay) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.watchers) >= h.opts.MaxWatchers {
		h.refused.Add(1)
		return nil, nil
	}
	pos := &position{next: h.head}
	h.watchers[pos] = struct{}{}
	return pos, &replay{upTo: h.opened}
}

// replay walks the spans open when a watcher connected, a chunk at a time, so that
// the hub's lock is held for one chunk only and nothing is copied ahead of what the
// watcher writes. Spans opened since are not replayed: the ring has them.
type replay struct {
	upTo uint64 // the last span opened before the watcher connected
	slot int    // next slot of the open table to look at
}

// replayScan bounds the slots of the open table one replayChunk looks at.
const replayScan = 4 * readBatch

// replayChunk copies into buf, as span_open entries marked replay, the next spans of
// r that are still open, as many as fit; done is true when none are left. Spans come
// in no particular order.
func (h *Hub) replayChunk(r *replay, buf []entry) (got []entry, done bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	got = buf[:0]
	slots := h.open.slots
	for end := min(len(slots), r.slot+replayScan); r.slot < end && len(got) < cap(buf); r.slot++ {
		if st := &slots[r.slot]; st.seq != 0 && st.seq <= r.upTo {
			got = append(got, entry{ev: st.open, span: st.info, replay: true})
		}
	}
	return got, r.slot >= len(slots)
}

func (h *Hub) unregister(pos *position) {
	h.mu.Lock()
	delete(h.watchers, pos)
	h.mu.Unlock()
}

// read copies into buf the events from pos on, as many as fit, and moves pos past
// them. It returns them, how many events were skipped because pos fell out of the
// ring, and the channel that is closed when more arrive.
func (h *Hub) read(pos *position, buf []entry) (got []entry, skipped uint64, wake <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cursor := pos.next
	size := uint64(len(h.ring))
	if h.head > size && cursor < h.head-size {
		skipped = h.head - size - cursor
		cursor = h.head - size
	}
	n := min(h.head-cursor, uint64(cap(buf)))
	got = buf[:n]
	for i := range got {
		got[i] = h.ring[(cursor+uint64(i))%size]
	}
	pos.next = cursor + n
	return got, skipped, h.wake
}

// Stats are the hub's counters.
type Stats struct {
	Watchers  int    // connected now
	Sent      uint64 // events written to watchers
	Skipped   uint64 // events a slow watcher skipped
	CutOff    uint64 // watchers disconnected because a write stalled past the write timeout
	MaxLag    uint64 // events the slowest watcher has yet to read; beyond the ring size it skips
	OpenSpans int    // open spans remembered now
	Evicted   uint64 // open spans forgotten because the table was full
	Refused   uint64 // watchers refused because MaxWatchers were connected
}

// Stats returns the counters so far.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	w, open := len(h.watchers), h.open.len()
	var lag uint64
	for pos := range h.watchers {
		lag = max(lag, h.head-pos.next)
	}
	h.mu.Unlock()
	return Stats{
		Watchers:  w,
		Sent:      h.sent.Load(),
		Skipped:   h.skipped.Load(),
		CutOff:    h.cutOff.Load(),
		MaxLag:    lag,
		OpenSpans: open,
		Evicted:   h.evicted.Load(),
		Refused:   h.refused.Load(),
	}
}

// Shutdown ends every watcher's stream, so that an HTTP server's own Shutdown does not
// wait on them; watchers that connect later get 503. It is safe to call more than once.
func (h *Hub) Shutdown(context.Context) error {
	h.doneOnce.Do(func() { close(h.done) })
	return nil
}
