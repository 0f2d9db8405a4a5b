package bridge

import (
	"slices"
	"time"
)

// streamState is what the assembler knows of a stream that is not parked.
type streamState struct {
	id          StreamID
	next        uint64 // next sequence number to apply
	pending     []held // held back, sorted by Sequence, all > next
	dropped     []seqRange
	skipped     map[uint64]struct{} // gap numbers given up on; applied if they come late
	lastArrival time.Time           // clock time of the last event, heartbeats included
	lastTime    time.Time           // latest event time
	spans       *openSpan           // open spans of the stream (linked list)
	droppedN    uint64              // events reported dropped by StreamDiagnostic events
	inv         *invocation
	// root is the stream's local root span once its first SpanOpen is applied
	// (hasRoot); its end closes the stream when no other span of it is open.
	root    spanKey
	nOpen   uint32 // spans in the list, for MaxOpenSpansPerStream
	ended   bool
	hasRoot bool
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
// can be packed exactly; it leaves it alone otherwise.
func (a *Assembler) park(s *streamState) {
	if s.spans != nil || len(s.pending) > 0 || len(s.skipped) > 0 || len(s.dropped) > 0 ||
		!s.id.IsValid() || (s.inv != nil && s.inv.root != nil) {
		return
	}
	ns, flags, ok := packTime(s.lastTime)
	arrival := s.lastArrival.Sub(a.epoch)
	if !ok || !a.epoch.Add(arrival).Equal(s.lastArrival) {
		return
	}
	p := parkedStream{next: s.next, droppedN: s.droppedN, lastArrival: arrival, lastTime: ns, root: s.root, flags: flags}
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
		return &streamState{id: id}
	}
	delete(a.parked, id)
	s := &streamState{
		id:          id,
		next:        p.next,
		droppedN:    p.droppedN,
		lastArrival: a.epoch.Add(p.lastArrival),
		lastTime:    unpackTime(p.lastTime, p.flags),
		root:        p.root,
		ended:       p.flags&parkedEnded != 0,
		hasRoot:     p.flags&parkedHasRoot != 0,
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
	s.dropped = slices.DeleteFunc(s.dropped, func(r seqRange) bool { return r.hi < s.next })
	if len(s.dropped) == 0 {
		s.dropped = nil
	}
}
