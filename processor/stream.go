package processor

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// stream is one local root span and its local descendants. Its mutex orders
// everything published on it: the sequence number is taken and Publish called under
// it, so events reach the pipeline in sequence order whatever goroutine produces
// them. It also guards the mutable fields of the spanStates of the stream.
//
// A stream is embedded in its root's spanState, so opening a root costs no
// allocation of its own.
type stream struct {
	mu sync.Mutex

	id      bridge.StreamID // zero until the stream first publishes; guarded by mu
	traceID trace.TraceID
	root    *spanState // its SpanID, Resource, Scope and start go on the stream's own events

	// Guarded by mu.
	next     uint64 // sequence of the next event
	open     int32  // spans of the stream that have not ended
	shown    int32  // of those, spans whose SpanOpen was published
	closed   bool   // ended (root's end or Outcome sent or attempted): nothing follows
	held     int32  // of the open spans, those whose SpanOpen is held back (AnnounceDelay)
	lastTick uint64 // scan tick of the last event published
	seenTick uint64 // scan tick at which the heartbeat check last visited the stream
}

// spanState is what the processor keeps of one open span: the live span, its stream,
// and the bodies of its SpanOpen and SpanEndData events, embedded so that one
// allocation per span covers them all. A body is never written after the event that
// carries it is published. It is kept within 512 bytes, a size class of the Go
// allocator: every span allocates one, and the bytes allocated set how often the
// garbage collector runs.
type spanState struct {
	rw     sdktrace.ReadWriteSpan
	str    *stream
	spanID trace.SpanID
	res    *resource.Resource
	scope  *instrumentation.Scope

	// openAttrs is the span's attribute slice at start, before limits, kept to tell at
	// the end which attributes changed. The SDK never writes a slice it handed out.
	openAttrs    []attribute.KeyValue
	openLinks    int32 // links at start, counting those the SDK dropped
	openDropAttr int32 // attributes the processor dropped from SpanOpen

	// Guarded by str.mu.
	lastName   string
	lastStatus *bridge.StatusUpdate // last StatusUpdate published; nil: none (status Unset)
	ended      bool                 // SpanEndData published (or the span's events suppressed)
	pending    bool                 // not announced yet: its SpanOpen is held back (AnnounceDelay)
	suppressed bool                 // SpanOpen was refused: later events of the span are not sent
	renamed    bool                 // firstRename is in use
	children   int32                // spans started under this one that the processor published

	open        bridge.SpanOpen
	end         bridge.SpanEndData
	firstRename bridge.UpdateName
	wrapped     span // the span Wrap's tracers hand out for this span

	own stream // the stream, when this span is a local root
}

// publishedStatus returns the status last published for st: Unset before any. The
// caller holds st.str.mu.
func (st *spanState) publishedStatus() bridge.Status {
	if st.lastStatus == nil {
		return bridge.Status{}
	}
	return st.lastStatus.Status
}

// heartbeat is the body of every Heartbeat event: it holds nothing, so all share it.
var heartbeat = &bridge.Heartbeat{}

// newStreamID returns a random 128-bit stream id.
func newStreamID() bridge.StreamID {
	var id bridge.StreamID
	for id == (bridge.StreamID{}) {
		binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

// publishLocked stamps e with the stream's next sequence number and publishes it.
// The caller holds str.mu. The sequence advances even when the pipeline refuses the
// event: the pipeline then reports the run of refused sequence numbers to the sink in
// a StreamDiagnostic, so a receiver can account for every number.
func (p *Processor) publishLocked(str *stream, e bridge.Event) bool {
	if !str.id.IsValid() {
		// Drawn on first use: a span alone in its stream never needs a random id.
		str.id = newStreamID()
	}
	e.StreamID = str.id
	e.Sequence = str.next
	str.next++
	if !p.pipe.Publish(e) {
		p.dropped.Add(1)
		return false
	}
	str.lastTick = p.tick.Load()
	return true
}

// envelope returns the envelope of an event about st.
func (st *spanState) envelope(t time.Time, b bridge.Body) bridge.Event {
	return bridge.Event{
		TraceID:  st.str.traceID,
		SpanID:   st.spanID,
		Time:     t,
		Resource: st.res,
		Scope:    st.scope,
		Body:     b,
	}
}

// renameLocked publishes UpdateName when name differs from the last name published for
// st. The caller holds st.str.mu and has checked that st neither ended nor was
// suppressed.
func (p *Processor) renameLocked(s *spanState, name string, now time.Time) {
	if name == s.lastName || s.pending {
		return // a held-back SpanOpen will carry the name
	}
	var body *bridge.UpdateName
	if !s.renamed {
		s.renamed = true
		s.firstRename.Name = name
		body = &s.firstRename
	} else {
		body = &bridge.UpdateName{Name: name}
	}
	if p.publishLocked(s.str, s.envelope(now, body)) {
		s.lastName = name
	}
}

// spanEndedLocked accounts for the end of st in its stream and ends the stream when
// st was its last open span; closes tells whether the end of st was published in a
// form that ends its stream when st is the root. The caller holds str.mu.
//
// A stream ends with its root's SpanEndData (or CompleteSpan), and no Outcome, when
// the root ends while no other span of the stream is open: a receiver sees
// the same and ends the stream there (docs/PROTOCOL.md, "Streams, order and sequence
// numbers"). Otherwise the Outcome closes the stream once its last span ended: when a
// descendant outlived the root, when the root's SpanOpen or SpanEndData was dropped
// (so that a receiver still learns the end), or at Shutdown.
func (p *Processor) spanEndedLocked(st *spanState, closes bool, end time.Time, outcome string) {
	str := st.str
	str.open--
	if str.closed {
		return
	}
	if st == str.root && closes && str.shown == 0 && str.held == 0 {
		str.closed = true
		return
	}
	if str.open > 0 {
		return
	}
	str.closed = true
	// The less common ending: its body is allocated here rather than carried by every
	// root. StartTime takes the root span's lock, after the stream's as everywhere.
	body := &bridge.Outcome{Outcome: outcome}
	if start := str.root.rw.StartTime(); end.After(start) {
		body.WallTime = end.Sub(start)
	}
	p.publishLocked(str, bridge.Event{
		TraceID:  str.traceID,
		SpanID:   str.root.spanID,
		Time:     end,
		Resource: str.root.res,
		Scope:    str.root.scope,
		Body:     body,
	})
}

// registry holds the open spans, sharded by span id so that OnStart and OnEnd on many
// goroutines rarely meet on one lock. No shard lock is ever held while a stream lock
// is taken, nor the other way round.
type registry struct {
	shards [registryShards]registryShard
}

const registryShards = 32

// spanKey identifies a span in the registry: trace and span id, so that an id
// generator that repeats span ids across traces cannot mix spans up.
type spanKey struct {
	traceID trace.TraceID
	spanID  trace.SpanID
}

func keyOf(sc trace.SpanContext) spanKey { return spanKey{sc.TraceID(), sc.SpanID()} }

// key returns the registry key of st; st.str must be set.
func (st *spanState) key() spanKey { return spanKey{st.str.traceID, st.spanID} }

type registryShard struct {
	mu sync.Mutex
	m  map[spanKey]*spanState
	// pending holds the spans of the shard whose SpanOpen is held back, in the order
	// they started (so in the order they fall due), from head on.
	pending []pendingOpen
	head    int
	// busy counts the OnStart and OnEnd calls in progress for spans of this shard, so
	// that Shutdown can wait for them: a span is then either reported by its own
	// OnEnd or as unfinished, never lost between the two. It shares the cache line
	// the call locks anyway.
	busy atomic.Int32
	_    [76]byte // one shard per two 64-byte cache lines
}

// pendingOpen is a span waiting for its announcement, due at due (Unix nanoseconds).
// It holds the span's registry key, so that appendDue tells whether the span is still
// registered without reading its state, which by then is seldom in cache.
type pendingOpen struct {
	st  *spanState
	key spanKey
	due int64
}

func newRegistry() *registry {
	r := &registry{}
	for i := range r.shards {
		r.shards[i].m = make(map[spanKey]*spanState)
	}
	return r
}

func (r *registry) shard(k spanKey) *registryShard {
	h := binary.LittleEndian.Uint64(k.spanID[:]) * 0x9E3779B97F4A7C15
	return &r.shards[h>>(64-5)]
}

// enter marks a call for span k in progress; the caller calls leave on the shard
// it returns when done.
func (r *registry) enter(k spanKey) *registryShard {
	sh := r.shard(k)
	sh.busy.Add(1)
	return sh
}

func (sh *registryShard) leave() { sh.busy.Add(-1) }

// idleWaitLimit bounds waitIdle even without a ctx deadline: the calls it waits for
// take microseconds, so only a Shutdown called from inside one of them would wait
// that long.
const idleWaitLimit = time.Second

// waitIdle waits until no OnStart or OnEnd call is in progress, ctx is done, or
// idleWaitLimit passed.
func (r *registry) waitIdle(ctx context.Context) error {
	deadline := time.Now().Add(idleWaitLimit)
	for i := range r.shards {
		for r.shards[i].busy.Load() > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return nil
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	return nil
}

// put registers st; a span whose SpanOpen is held back (due > 0) also waits for its
// announcement at due, in Unix nanoseconds.
func (r *registry) put(st *spanState, due int64) {
	k := st.key()
	sh := r.shard(k)
	sh.mu.Lock()
	sh.m[k] = st
	if due > 0 {
		sh.pending = append(sh.pending, pendingOpen{st: st, key: k, due: due})
	}
	sh.mu.Unlock()
}

// appendDue appends to buf the held-back spans due by now (all of them when now is 0)
// and forgets them. Spans taken out of the registry meanwhile are left out: their
// end reports them (as a CompleteSpan), so most short spans cost the caller neither
// a sort nor a lock.
func (r *registry) appendDue(buf []pendingOpen, now int64) []pendingOpen {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for sh.head < len(sh.pending) && (now == 0 || sh.pending[sh.head].due <= now) {
			if po := sh.pending[sh.head]; sh.m[po.key] == po.st {
				buf = append(buf, po)
			}
			sh.pending[sh.head] = pendingOpen{}
			sh.head++
		}
		if sh.head == len(sh.pending) {
			sh.pending, sh.head = sh.pending[:0], 0
		} else if sh.head > len(sh.pending)/2 {
			n := copy(sh.pending, sh.pending[sh.head:])
			clear(sh.pending[n:])
			sh.pending, sh.head = sh.pending[:n], 0
		}
		sh.mu.Unlock()
	}
	return buf
}

func (r *registry) get(k spanKey) *spanState {
	sh := r.shard(k)
	sh.mu.Lock()
	st := sh.m[k]
	sh.mu.Unlock()
	return st
}

// take removes and returns the span's state.
func (r *registry) take(k spanKey) *spanState {
	sh := r.shard(k)
	sh.mu.Lock()
	st, ok := sh.m[k]
	if ok {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
	return st
}

// appendAll appends every open span to buf.
func (r *registry) appendAll(buf []*spanState) []*spanState {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for _, st := range sh.m {
			buf = append(buf, st)
		}
		sh.mu.Unlock()
	}
	return buf
}

// len returns the number of open spans.
func (r *registry) len() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
