package bridge

import (
	"slices"
	"time"
)

// streamState is what the assembler knows of a stream that is not parked. It is kept
// small, as a long-running span may be alone in its stream: what few streams need is
// in rare.
type streamState struct {
	id      StreamID
	next    uint64              // next sequence number to apply
	pending []held              // held back, sorted by Sequence, all > next
	skipped map[uint64]struct{} // gap numbers given up on; applied if they come late
	// lastArrival is the clock time of the last event, heartbeats included, since
	// Assembler.epoch.
	lastArrival time.Duration
	lastTime    int64     // latest event time, packed with timeFlags (see latest)
	spans       *openSpan // open spans of the stream (linked list)
	inv         *invocation
	rare        *streamRare // nil until the stream needs it
	// root is the stream's local root span once its first SpanOpen is applied
	// (hasRoot); its end closes the stream when no other span of it is open.
	root      spanKey
	nOpen     uint32 // spans in the list, for MaxOpenSpansPerStream
	ended     bool
	hasRoot   bool
	timeFlags uint8 // packTime's flags of lastTime, and streamTimeExact
}

// streamTimeExact: the latest event time of a stream does not pack exactly, and is in
// its streamRare (a flag apart from packTime's).
const streamTimeExact = 1 << 7

// streamRare is what a stream holds beyond what most streams have.
type streamRare struct {
	dropped  []seqRange // numbers accounted for by StreamDiagnostic events
	droppedN uint64     // events reported dropped by StreamDiagnostic events
	lastTime time.Time  // when streamTimeExact
}

// newStream returns the state of a stream never seen (or forgotten).
func newStream(id StreamID) *streamState {
	return &streamState{id: id, timeFlags: parkedTimeZero}
}

// more returns the stream's rare part, made when it has none.
func (s *streamState) more() *streamRare {
	if s.rare == nil {
		s.rare = new(streamRare)
	}
	return s.rare
}

// dropped returns the ranges of numbers accounted for by StreamDiagnostic events.
func (s *streamState) dropped() []seqRange {
	if s.rare == nil {
		return nil
	}
	return s.rare.dropped
}

// droppedN returns the number of events reported dropped by StreamDiagnostic events.
func (s *streamState) droppedN() uint64 {
	if s.rare == nil {
		return 0
	}
	return s.rare.droppedN
}

// latest returns the latest event time of the stream.
func (s *streamState) latest() time.Time {
	if s.timeFlags&streamTimeExact != 0 {
		return s.rare.lastTime
	}
	return unpackTime(s.lastTime, s.timeFlags)
}

// noteTime notes an event time of the stream.
func (s *streamState) noteTime(t time.Time) {
	if !t.After(s.latest()) {
		return
	}
	if s.timeFlags&streamTimeExact == 0 {
		if ns, flags, ok := packTime(t); ok {
			s.lastTime, s.timeFlags = ns, flags
			return
		}
	}
	s.more().lastTime = t
	s.timeFlags |= streamTimeExact
}

// parkedStream is a stream with nothing open, held back or waited for, kept without
// pointers: what receive and Sweep need of it, and nothing else (a parked stream's
// gaps, drops and pending events are empty by construction).
type parkedStream struct {
	next        uint64
	droppedN    uint64
	lastArrival time.Duration // since Assembler.epoch
	lastTime    int64         // Unix nanoseconds; see packTime
	root        spanKey
	flags       uint8
}

// parkedStream flags.
const (
	parkedEnded = 1 << iota
	parkedHasRoot
	parkedInvocation // a workerd invocation whose root has ended
	parkedTimeZero   // lastTime is the zero Time
	parkedTimeLocal  // lastTime is in time.Local (else UTC)
)

// packTime packs t into Unix nanoseconds and flags, and reports whether unpackTime
// gives back exactly t (not so for a monotonic reading, another location, or a time
// out of the int64 nanosecond range).
func packTime(t time.Time) (ns int64, flags uint8, ok bool) {
	switch {
	case t.IsZero():
		flags = parkedTimeZero
	case t.Location() == time.Local:
		flags = parkedTimeLocal
		ns = t.UnixNano()
	default:
		ns = t.UnixNano()
	}
	return ns, flags, unpackTime(ns, flags) == t
}

func unpackTime(ns int64, flags uint8) time.Time {
	switch {
	case flags&parkedTimeZero != 0:
		return time.Time{}
	case flags&parkedTimeLocal != 0:
		return time.Unix(0, ns)
	}
	return time.Unix(0, ns).UTC()
}

// park moves s to a.parked when it holds nothing but what recognises duplicates and
// ends it (nothing open, held back, skipped or reported dropped ahead), and its times
// are packed exactly; it leaves it alone otherwise.
func (a *Assembler) park(s *streamState) {
	if s.spans != nil || len(s.pending) > 0 || len(s.skipped) > 0 || len(s.dropped()) > 0 ||
		!s.id.IsValid() || (s.inv != nil && s.inv.root != nil) || s.timeFlags&streamTimeExact != 0 {
		return
	}
	p := parkedStream{next: s.next, droppedN: s.droppedN(), lastArrival: s.lastArrival, lastTime: s.lastTime,
		root: s.root, flags: s.timeFlags & (parkedTimeZero | parkedTimeLocal)}
	if s.ended {
		p.flags |= parkedEnded
	}
	if s.hasRoot {
		p.flags |= parkedHasRoot
	}
	if s.inv != nil {
		p.flags |= parkedInvocation
	}
	delete(a.streams, s.id)
	a.parked[s.id] = p
}

// unpark returns the state of stream id taken out of a.parked, or a new one.
func (a *Assembler) unpark(id StreamID) *streamState {
	p, ok := a.parked[id]
	if !ok {
		return newStream(id)
	}
	delete(a.parked, id)
	s := &streamState{
		id:          id,
		next:        p.next,
		lastArrival: p.lastArrival,
		lastTime:    p.lastTime,
		root:        p.root,
		ended:       p.flags&parkedEnded != 0,
		hasRoot:     p.flags&parkedHasRoot != 0,
		timeFlags:   p.flags & (parkedTimeZero | parkedTimeLocal),
	}
	if p.droppedN != 0 {
		s.more().droppedN = p.droppedN
	}
	if p.flags&parkedInvocation != 0 {
		s.inv = &invocation{}
	}
	return s
}

// chooseRoot makes the span a SpanOpen opens the root of its stream when the stream
// has none yet and its parent is zero, remote or not a span of the stream. Streams
// without an id (no order) and workerd invocations (their Onset opens the root) have
// none.
func (a *Assembler) chooseRoot(s *streamState, key spanKey, b *SpanOpen) {
	if s.hasRoot || s.inv != nil || !s.id.IsValid() {
		return
	}
	if b.Parent.IsValid() && !b.RemoteParent {
		if p := a.open.get(spanKey{key.trace, b.Parent}); p != nil && p.stream == s {
			return
		}
	}
	s.root, s.hasRoot = key, true
}

// closeIfRootEnded ends a stream whose root's SpanEndData (key) has just been applied
// while no other span of the stream is open: its producer sends no Outcome then.
func (a *Assembler) closeIfRootEnded(s *streamState, key spanKey) {
	if !s.hasRoot || s.root != key || s.spans != nil || s.inv != nil {
		return
	}
	a.endStream(s, "its root ended")
}

// endStream handles the end of a stream (its Outcome, or its root's end): its spans
// still open come out unfinished. What it keeps for ordering stays, bounded, until
// Sweep forgets the stream: the next sequence number (to recognise duplicates), the
// gaps given up on (an event that fills one late is still applied) and the drops a
// StreamDiagnostic reported ahead of it.
func (a *Assembler) endStream(s *streamState, reason string) {
	s.ended = true
	s.hasRoot = false
	for s.spans != nil {
		a.emitUnfinished(s.spans, neverEnded(reason), time.Time{})
	}
	if r := s.rare; r != nil {
		r.dropped = slices.DeleteFunc(r.dropped, func(d seqRange) bool { return d.hi < s.next })
		if len(r.dropped) == 0 {
			r.dropped = nil
		}
	}
}
