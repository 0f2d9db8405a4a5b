package bridge

import (
	"math/bits"
	"slices"
	"time"
)

// MaxSequence is the largest sequence number the assembler accepts: 2^53 - 1, the
// largest integer a JSON number (workerd's events) carries exactly, and more events than
// a producer sends in centuries. An event with a larger one is rejected (counted in
// Rejected): taking it would count ~10^19 gaps, or wrap the next expected number.
const MaxSequence = 1<<53 - 1

// seqRange is a closed range of sequence numbers accounted for by a StreamDiagnostic.
type seqRange struct{ lo, hi uint64 }

// held is an event held back for ordering, with the clock time it arrived.
type held struct {
	Event
	at time.Time
}

// receive places one event in its stream's order and applies what has become ready.
func (a *Assembler) receive(e Event, now time.Time) *streamState {
	if e.Body == nil || (e.StreamID.IsValid() && e.Sequence > MaxSequence) {
		a.stats.Rejected++
		return nil
	}
	s := a.recent
	if s == nil || s.id != e.StreamID {
		if s = a.streams[e.StreamID]; s == nil {
			s = a.unpark(e.StreamID)
			a.streams[e.StreamID] = s
		}
		a.recent = s
	}
	s.lastArrival = now.Sub(a.epoch)
	s.noteTime(e.Time)
	if !e.StreamID.IsValid() {
		// No stream: no order to restore and no duplicates to recognise.
		a.stats.Events++
		a.apply(s, e)
		return nil
	}
	seq := e.Sequence
	if seq < s.next {
		if _, ok := s.skipped[seq]; ok {
			// A gap given up on was filled after all: apply it late rather than lose it.
			delete(s.skipped, seq)
			if a.stats.Gaps > 0 {
				a.stats.Gaps--
			}
			a.stats.Reordered++
			a.stats.Events++
			a.apply(s, e)
			return s
		}
		a.stats.Duplicates++
		return s
	}
	i, found := slices.BinarySearchFunc(s.pending, seq, func(p held, q uint64) int {
		switch {
		case p.Sequence < q:
			return -1
		case p.Sequence > q:
			return 1
		}
		return 0
	})
	if found {
		a.stats.Duplicates++
		return s
	}
	a.stats.Events++
	if seq == s.next && len(s.pending) == 0 {
		s.next++
		a.apply(s, e)
		a.drain(s)
		return s
	}
	if i < len(s.pending) {
		a.stats.Reordered++
	}
	s.pending = slices.Insert(s.pending, i, held{e, now})
	if d, ok := e.Body.(*StreamDiagnostic); ok {
		a.accountDropped(s, seq, d.DroppedEvents)
	}
	a.drain(s)
	for len(s.pending) > a.opts.ReorderWindow {
		a.skipGap(s)
		a.drain(s)
	}
	return s
}

// accountDropped records that the n sequence numbers up to and including seq (the
// StreamDiagnostic's own) were dropped by the producer: they are not waited for.
func (a *Assembler) accountDropped(s *streamState, seq, n uint64) {
	if n < 2 {
		return // the diagnostic's own number is all there is
	}
	lo := uint64(0)
	if seq >= n-1 {
		lo = seq - (n - 1)
	}
	if seq == 0 {
		return
	}
	hi := seq - 1
	if hi < s.next {
		return
	}
	lo = max(lo, s.next)
	r := s.more()
	r.dropped = append(r.dropped, seqRange{lo, hi})
}

// drain applies the held-back events that are next in order, skipping the numbers
// accounted for by StreamDiagnostic events.
func (a *Assembler) drain(s *streamState) {
	for {
		if len(s.pending) > 0 && s.pending[0].Sequence == s.next {
			e := s.pending[0].Event
			s.pending[0] = held{}
			s.pending = s.pending[1:]
			s.next++
			a.apply(s, e)
			continue
		}
		if !a.skipDropped(s) {
			break
		}
	}
	if len(s.pending) == 0 {
		s.pending = nil
	}
}

// skipDropped moves past sequence numbers a StreamDiagnostic accounted for.
func (a *Assembler) skipDropped(s *streamState) bool {
	if s.rare == nil {
		return false
	}
	for i := 0; i < len(s.rare.dropped); i++ {
		r := s.rare.dropped[i]
		if r.hi < s.next {
			s.rare.dropped = slices.Delete(s.rare.dropped, i, i+1)
			i--
			continue
		}
		if r.lo > s.next {
			continue
		}
		to := r.hi + 1
		if len(s.pending) > 0 && s.pending[0].Sequence < to {
			to = s.pending[0].Sequence
		}
		if to == s.next {
			return false
		}
		s.next = to
		return true
	}
	return false
}

// expireWait gives up on missing numbers once an event has been held back for them
// ReorderTimeout: it is applied with everything before it, so that a run of lost
// numbers costs one wait, not one each.
func (a *Assembler) expireWait(s *streamState, now time.Time) {
	upTo, expired := uint64(0), false
	for _, h := range s.pending {
		if now.Sub(h.at) >= a.opts.ReorderTimeout {
			upTo, expired = h.Sequence, true
		}
	}
	for expired && len(s.pending) > 0 && s.pending[0].Sequence <= upTo {
		a.skipGap(s)
		a.drain(s)
	}
}

// skipGap gives up on the numbers missing before the first held-back event, counting
// them as gaps and remembering (a bounded number of) them in case they come late.
func (a *Assembler) skipGap(s *streamState) {
	if len(s.pending) == 0 {
		return
	}
	to := s.pending[0].Sequence
	if to < s.next {
		// Cannot happen (receive keeps held-back events above next); never loop on it.
		s.pending = s.pending[1:]
		a.stats.Duplicates++
		return
	}
	if to == s.next {
		return // drain applies it
	}
	a.stats.Gaps = addSat(a.stats.Gaps, to-s.next)
	if s.skipped == nil {
		s.skipped = make(map[uint64]struct{})
	}
	from := s.next
	if to-from > uint64(a.opts.ReorderWindow) {
		from = to - uint64(a.opts.ReorderWindow)
	}
	for q := from; q < to; q++ {
		s.skipped[q] = struct{}{}
	}
	// Keep the memory of given-up numbers bounded: forget the oldest.
	if over := len(s.skipped) - a.opts.ReorderWindow; over > 0 {
		keys := make([]uint64, 0, len(s.skipped))
		for q := range s.skipped {
			keys = append(keys, q)
		}
		slices.Sort(keys)
		for _, q := range keys[:over] {
			delete(s.skipped, q)
		}
	}
	s.next = to
}

// addSat returns x+y, or the largest uint64 when the sum would wrap around.
func addSat(x, y uint64) uint64 {
	sum, carry := bits.Add64(x, y, 0)
	if carry != 0 {
		return ^uint64(0)
	}
	return sum
}
