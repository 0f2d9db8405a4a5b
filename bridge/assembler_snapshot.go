package bridge

import (
	"bytes"
	"cmp"
	"slices"
)

// keepEvent records an event just applied on the open span it concerns (the root of
// its invocation when its own span is not open), for Snapshot. Events that end a span
// or a stream, and heartbeats, restore nothing and are not kept.
func (a *Assembler) keepEvent(s *streamState, key spanKey, e Event) {
	switch e.Body.(type) {
	case *SpanEndData, *Outcome, *Heartbeat:
		return
	}
	sp := a.open[key]
	if sp == nil && s.inv != nil {
		sp = s.inv.root
	}
	if sp != nil {
		sp.events = append(sp.events, e)
	}
}

// Snapshot returns the events that restore, in a new Assembler that consumes them, the
// spans open now and the events held back for order, sorted by stream and sequence.
// It needs WithKeepEvents; without it, it returns only the events held back.
func (a *Assembler) Snapshot() []Event {
	a.mu.Lock()
	var events []Event
	for _, sp := range a.open {
		events = append(events, sp.events...)
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
