package bridge

import (
	"slices"
	"time"
	"unsafe"
)

// lateSpans are the spans emitted as unfinished and remembered for a late end, oldest
// first in fifo (which may hold keys already forgotten; compact drops them).
type lateSpans struct {
	spans map[spanKey]lateSpan
	fifo  []spanKey
	bytes int // sum of the spans' size estimates
}

type lateSpan struct {
	sp   *openSpan
	at   time.Time // when it was emitted unfinished
	size int       // spanSize when remembered
}

// remember keeps sp, just emitted unfinished, for a late end, within MaxLateSpans and
// MaxLateBytes (the oldest forgotten first, counted in LateForgotten).
func (a *Assembler) remember(sp *openSpan) {
	o := &a.opts
	if o.MaxLateSpans < 0 || o.MaxLateBytes < 0 || o.ForgetLateAfter < 0 {
		return
	}
	sp.settle(&a.packer)
	size := sp.size()
	if size > o.MaxLateBytes {
		a.stats.LateForgotten++
		return
	}
	key := sp.key()
	if old, ok := a.late.spans[key]; ok {
		a.late.bytes -= old.size
	} else {
		a.late.fifo = append(a.late.fifo, key)
	}
	a.late.spans[key] = lateSpan{sp: sp, at: a.now, size: size}
	a.late.bytes += size
	for (len(a.late.spans) > o.MaxLateSpans || a.late.bytes > o.MaxLateBytes) && len(a.late.fifo) > 0 {
		a.dropOldestLate()
	}
	if len(a.late.fifo) > 2*len(a.late.spans)+16 {
		a.compactLate()
	}
}

// dropOldestLate forgets the span at the front of the FIFO, if still remembered.
func (a *Assembler) dropOldestLate() {
	key := a.late.fifo[0]
	a.late.fifo[0] = spanKey{}
	a.late.fifo = a.late.fifo[1:]
	if l, ok := a.late.spans[key]; ok {
		a.forgetLate(key, l)
		a.stats.LateForgotten++
	}
}

// takeLate returns the remembered span of key, forgetting it, or nil.
func (a *Assembler) takeLate(key spanKey) *openSpan {
	l, ok := a.late.spans[key]
	if !ok {
		return nil
	}
	a.forgetLate(key, l)
	if len(a.late.fifo) > 2*len(a.late.spans)+16 {
		a.compactLate()
	}
	return l.sp
}

func (a *Assembler) forgetLate(key spanKey, l lateSpan) {
	delete(a.late.spans, key)
	a.late.bytes -= l.size
}

// expireLate forgets the spans remembered longer than ForgetLateAfter.
func (a *Assembler) expireLate(now time.Time) {
	for len(a.late.fifo) > 0 {
		l, ok := a.late.spans[a.late.fifo[0]]
		if ok && now.Sub(l.at) <= a.opts.ForgetLateAfter {
			break
		}
		a.dropOldestLate()
	}
	if len(a.late.fifo) == 0 {
		a.late.fifo = nil // let a large backing array go
	}
}

// compactLate drops from the FIFO the keys already forgotten.
func (a *Assembler) compactLate() {
	kept := a.late.fifo[:0]
	seen := make(map[spanKey]struct{}, len(a.late.spans))
	for _, k := range a.late.fifo {
		if _, ok := a.late.spans[k]; !ok {
			continue
		}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		kept = append(kept, k)
	}
	a.late.fifo = slices.Clip(kept)
}

// ReleaseMemory forgets what the assembler keeps only to do better later, for a caller
// short of memory (the forwarder's memory limiter): the spans emitted unfinished (a
// late end of theirs is then rejected), the parked idle streams (a stream that resumes
// is then taken as new) and the records and origins kept for reuse. Open spans are
// kept. It returns the estimated bytes let go.
func (a *Assembler) ReleaseMemory() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	freed := a.late.bytes + len(a.parked)*int(unsafe.Sizeof(parkedStream{})+unsafe.Sizeof(StreamID{}))
	a.stats.LateForgotten += uint64(len(a.late.spans))
	a.late = lateSpans{spans: make(map[spanKey]lateSpan)}
	a.parked = make(map[StreamID]parkedStream)
	a.free = nil
	a.origins = nil
	a.spareMu.Lock()
	a.spare = nil
	a.spareMu.Unlock()
	return freed
}

// size estimates the memory a remembered span holds, in bytes, as Event.Size does
// for events (Resource, Scope and stream, shared, are not counted).
func (sp *openSpan) size() int {
	n := int(unsafe.Sizeof(openSpan{})) + len(sp.name) + len(sp.attrs)
	x := sp.extra
	if x == nil {
		return n
	}
	n += int(unsafe.Sizeof(spanExtra{})) + len(x.status.Description) + traceStateSize(x.traceState) +
		linksSize(x.links)
	for i := range x.events {
		ev := &x.events[i]
		n += sizeSpanEvent + len(ev.Name) + attributesSize(ev.Attributes)
	}
	return n
}
