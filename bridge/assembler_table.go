package bridge

import (
	"hash/maphash"
	"iter"
)

// spanTable is the set of open spans by key: an open-addressing hash table (linear
// probing) of pointers to their records, which hold their keys. A slot takes 8 bytes
// where a Go map from key to pointer takes 32. A deleted span leaves a tombstone until
// the table is rebuilt, so ranging over it while spans are deleted (all) sees every
// span once.
type spanTable struct {
	seed  maphash.Seed
	slots []*openSpan // a power of two of them, never full
	n     int         // spans
	used  int         // slots not nil: spans and tombstones
}

// tombstone marks a deleted slot.
var tombstone = new(openSpan)

const minTableSlots = 8

func newSpanTable() spanTable { return spanTable{seed: maphash.MakeSeed()} }

func (t *spanTable) len() int { return t.n }

// first returns the slot to probe first for k, and the mask of slot numbers.
func (t *spanTable) first(k spanKey) (int, int) {
	mask := len(t.slots) - 1
	return int(maphash.Comparable(t.seed, k)) & mask, mask
}

// get returns the open span of k, or nil.
func (t *spanTable) get(k spanKey) *openSpan {
	if t.n == 0 {
		return nil
	}
	for i, mask := t.first(k); ; i = (i + 1) & mask {
		sp := t.slots[i]
		if sp == nil {
			return nil
		}
		if sp != tombstone && sp.trace == k.trace && sp.id == k.span {
			return sp
		}
	}
}

// put adds sp, whose key is not in the table. It must not be called within each.
func (t *spanTable) put(sp *openSpan) {
	if 4*(t.used+1) > 3*len(t.slots) {
		t.rebuild()
	}
	for i, mask := t.first(sp.key()); ; i = (i + 1) & mask {
		switch t.slots[i] {
		case nil:
			t.used++
			fallthrough
		case tombstone:
			t.slots[i] = sp
			t.n++
			return
		}
	}
}

// del removes sp, which is in the table.
func (t *spanTable) del(sp *openSpan) {
	for i, mask := t.first(sp.key()); ; i = (i + 1) & mask {
		if t.slots[i] != sp {
			continue
		}
		t.n--
		if t.slots[(i+1)&mask] == nil {
			t.slots[i] = nil // no probe goes on past it
			t.used--
		} else {
			t.slots[i] = tombstone
		}
		return
	}
}

// rebuild moves the spans to a table of twice (at least) as many slots as spans,
// without tombstones: larger or smaller than the current one.
func (t *spanTable) rebuild() {
	size := minTableSlots
	for size < 2*(t.n+1) {
		size *= 2
	}
	old := t.slots
	t.slots, t.n, t.used = make([]*openSpan, size), 0, 0
	for _, sp := range old {
		if sp != nil && sp != tombstone {
			t.put(sp)
		}
	}
}

// all ranges over the spans; the loop may delete spans (del), not add any.
func (t *spanTable) all() iter.Seq[*openSpan] {
	return func(yield func(*openSpan) bool) {
		for i := 0; i < len(t.slots); i++ {
			if sp := t.slots[i]; sp != nil && sp != tombstone && !yield(sp) {
				return
			}
		}
	}
}
