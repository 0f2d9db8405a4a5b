package bridge

import (
	"bytes"
	"cmp"
	"slices"
)

// keepEvent records an event just applied on the open span it concerns, for Snapshot:
// an invocation event (log, exception, return, diagnostic) whose own span is not open
// goes with the invocation's root, as it was applied. Events that end a span or a
// stream, and heartbeats, restore nothing and are not kept.
func (a *Assembler) keepEvent(s *streamState, key spanKey, e Event) {
	sp := a.open.get(key)
	switch e.Body.(type) {
	case *SpanEndData, *Outcome, *Heartbeat:
		return
	case *Log, *Exception, *Return, *StreamDiagnostic:
		if sp == nil && s.inv != nil {
			sp = s.inv.root
		}
	}
	if sp != nil {
		x := sp.more()
		x.kept = append(x.kept, e)
	}
}

// Snapshot returns the events that restore, in a new Assembler that consumes them, the
// spans open now and the events held back for order, sorted by stream and sequence.
// It needs WithKeepEvents; without it, it returns only the events held back.
func (a *Assembler) Snapshot() []Event {
	a.mu.Lock()
	var events []Event
	for sp := range a.open.all() {
		if sp.extra != nil {
			events = append(events, sp.extra.kept...)
		}
	}
	for _, s := range a.streams {
		for _, h := range s.pending {
			events = append(events, h.Event)
		}
	}
	a.mu.Unlock()
	slices.SortStableFunc(events, func(x, y Event) int {
		if c := bytes.Compare(x.StreamID[:], y.StreamID[:]); c != 0 {
			return c
		}
		return cmp.Compare(x.Sequence, y.Sequence)
	})
	return events
}
