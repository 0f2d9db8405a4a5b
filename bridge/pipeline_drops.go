package bridge

import (
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

// The drop bookkeeping of a tail queue: the runs of dropped events per stream that
// StreamDiagnostic events will report, and the journal of drops made without the
// queue's lock.

// dropRun is a run of consecutive dropped events of one stream, not yet reported.
// Only plain numbers change per drop (pointer writes would cost write barriers).
type dropRun struct {
	count    uint64
	lastSeq  uint64 // Sequence of the last dropped event
	lastTime int64  // its Time, in Unix nanoseconds (0: zero Time)
	// From the first dropped event of the run.
	traceID  trace.TraceID
	resource *resource.Resource
	scope    *instrumentation.Scope
}

// droppedEvent is what the bookkeeping keeps of a dropped event.
type droppedEvent struct {
	streamID StreamID
	traceID  trace.TraceID
	seq      uint64
	time     int64 // Unix nanoseconds; 0 for the zero Time
	resource *resource.Resource
	scope    *instrumentation.Scope
}

func dropped(e *Event) droppedEvent {
	return droppedEvent{streamID: e.StreamID, traceID: e.TraceID, seq: e.Sequence,
		time: unixNano(e.Time), resource: e.Resource, scope: e.Scope}
}

// unixNano is t.UnixNano(), and 0 for the zero Time (whose UnixNano is undefined).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// dropRuns holds the pending drop runs of a tail, at most maxDropStreams. The run of
// the stream that dropped last is kept outside the map: drops come in bursts from
// one stream, and the cache keeps the drop path free of map operations. What has
// reads comes first, with the numbers of the last run, on one cache line.
type dropRuns struct {
	hasLast bool
	lastID  StreamID
	others  map[StreamID]dropRun
	last    dropRun
}

func (d *dropRuns) len() int {
	if d.hasLast {
		return len(d.others) + 1
	}
	return len(d.others)
}

// has reports whether stream id has a pending run.
func (d *dropRuns) has(id StreamID) bool {
	if d.hasLast && d.lastID == id {
		return true
	}
	if len(d.others) == 0 {
		return false
	}
	_, ok := d.others[id]
	return ok
}

// take removes and returns the run of stream id, which must be pending.
func (d *dropRuns) take(id StreamID) dropRun {
	if d.hasLast && d.lastID == id {
		d.hasLast = false
		return d.last
	}
	r := d.others[id]
	delete(d.others, id)
	return r
}

// pop removes and returns any pending run.
func (d *dropRuns) pop() (StreamID, dropRun) {
	if d.hasLast {
		d.hasLast = false
		return d.lastID, d.last
	}
	for id, r := range d.others {
		delete(d.others, id)
		return id, r
	}
	return StreamID{}, dropRun{}
}

// add extends the run of stream id by a drop of sequence seq at time t (Unix
// nanoseconds); traceID, res and scope serve only to start a new run. It reports
// false, and remembers nothing, when the stream has no run and maxDropStreams
// streams have. Cheap when id dropped last: only numbers change then.
func (d *dropRuns) add(id StreamID, seq uint64, t int64, traceID trace.TraceID,
	res *resource.Resource, scope *instrumentation.Scope) bool {
	if !d.hasLast || d.lastID != id {
		r, ok := d.others[id]
		if ok {
			delete(d.others, id)
		} else if d.len() >= maxDropStreams {
			return false
		}
		if d.hasLast {
			if d.others == nil {
				d.others = make(map[StreamID]dropRun)
			}
			d.others[d.lastID] = d.last
		}
		if !ok {
			r = dropRun{traceID: traceID, resource: res, scope: scope}
		}
		d.lastID, d.last, d.hasLast = id, r, true
	}
	d.last.count++
	d.last.lastSeq = seq
	d.last.lastTime = t
	return true
}

// addEvent is add for a dropped event.
func (d *dropRuns) addEvent(e *Event) bool {
	return d.add(e.StreamID, e.Sequence, unixNano(e.Time), e.TraceID, e.Resource, e.Scope)
}

// addDropped is add for a drop recorded in the journal.
func (d *dropRuns) addDropped(e *droppedEvent) bool {
	return d.add(e.streamID, e.seq, e.time, e.traceID, e.resource, e.scope)
}

func (d *dropRuns) clear() {
	d.hasLast = false
	clear(d.others)
}

// journalSlots is the capacity of a drop journal.
const journalSlots = 256

// drainedMark flags the mark of a slot drained ahead of an earlier slot still being
// written (see journalSlot).
const drainedMark = 1 << 63

// dropJournal records the drops made without the queue's lock, while the queue is
// full: producers then only reserve a slot with an atomic compare-and-swap, as cheap
// as the BatchSpanProcessor's drop, instead of contending for the lock. Whoever
// next holds the lock drains the journal into the runs before looking at them.
//
// Order per stream holds: a producer marks its slot ready before its Publish
// returns, so the stream's next event, published after, finds the drop in the
// journal. Draining takes ready slots in slot order and skips slots still being
// written (those of Publish calls still under way, of other streams).
type dropJournal struct {
	head  atomic.Uint64 // slots reserved so far: the next producer's ticket
	tail  atomic.Uint64 // slots drained so far (moved under the queue's lock)
	slots [journalSlots]journalSlot
}

// journalSlot holds the drop of ticket t in slot t%journalSlots. Its mark is t+1 once
// the drop is written, (t+1)|drainedMark once drained ahead of an earlier slot still
// being written, anything else before. So draining in order never writes the slot,
// and a mark left from an earlier ticket reads as not written.
type journalSlot struct {
	mark  atomic.Uint64
	event droppedEvent
	// Producers on two cores fill neighbouring slots at once: the padding keeps
	// what they write off each other's cache lines.
	_ [128 - 8 - unsafe.Sizeof(droppedEvent{})]byte
}

// record writes e into a free slot; it reports false when the journal is full or
// contended, and the caller takes the locked path instead.
func (j *dropJournal) record(e *Event) bool {
	for range 4 {
		h := j.head.Load()
		if h-j.tail.Load() >= journalSlots {
			return false
		}
		if j.head.CompareAndSwap(h, h+1) {
			s := &j.slots[h%journalSlots]
			s.event = dropped(e)
			s.mark.Store(h + 1)
			return true
		}
	}
	return false
}

// pending reports whether slots may wait to be drained.
func (j *dropJournal) pending() bool { return j.head.Load() != j.tail.Load() }

// drain calls f for each ready slot, in slot order, and frees the slots it can: those
// before the first slot still being written. The caller holds the queue's lock. Freed
// slots keep their resource and scope pointers until reused; producers share those
// for long anyway.
func (j *dropJournal) drain(f func(*droppedEvent)) {
	t, h := j.tail.Load(), j.head.Load()
	free := true // all slots from tail to i are drained
	for i := t; i < h; i++ {
		s := &j.slots[i%journalSlots]
		switch s.mark.Load() {
		case i + 1:
			f(&s.event)
			if !free {
				s.mark.Store((i + 1) | drainedMark)
			}
		case (i + 1) | drainedMark:
		default: // being written
			free = false
		}
		if free {
			t = i + 1
		}
	}
	j.tail.Store(t)
}
