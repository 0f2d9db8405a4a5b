package bridge

import (
	"hash/maphash"
	"iter"
)

// spanTable is the set of open spans by key: an open-addressing hash table (linear
// probing) of pointers to their records, which hold their keys. A slot takes 9 bytes
// (the pointer, and a tag of the key's hash that spares most probes a look at the
// record) where a Go map from key to pointer takes 32. A deleted span leaves a
// tombstone until the table is rebuilt, so that ranging over it while spans are
// deleted (all) sees every span once.
type spanTable struct {
	seed  maphash.Seed
	tags  []uint8     // tagEmpty, tagDeleted, or the tag of the slot's span
	slots []*openSpan // as many as tags, a power of two, never all used
	n     int         // spans
	used  int         // slots not empty: spans and tombstones
}

// Slot tags; a span's tag is from 2 up (tagOf).
const (
	tagEmpty   = 0
	tagDeleted = 1
)

const minTableSlots = 8

func newSpanTable() spanTable { return spanTable{seed: maphash.MakeSeed()} }

func (t *spanTable) len() int { return t.n }

// first returns the slot to probe first for k, the mask of slot numbers and k's tag.
func (t *spanTable) first(k spanKey) (i, mask int, tag uint8) {
	h := maphash.Comparable(t.seed, k)
	mask = len(t.slots) - 1
	return int(h) & mask, mask, uint8(h>>57) + 2
}

// get returns the open span of k, or nil.
func (t *spanTable) get(k spanKey) *openSpan {
	if t.n == 0 {
		return nil
	}
	for i, mask, tag := t.first(k); ; i = (i + 1) & mask {
		switch t.tags[i] {
		case tagEmpty:
			return nil
		case tag:
			if sp := t.slots[i]; sp.trace == k.trace && sp.id == k.span {
				return sp
			}
		}
	}
}

// put adds sp, whose key is not in the table. It must not be called while ranging.
func (t *spanTable) put(sp *openSpan) {
	if 4*(t.used+1) > 3*len(t.slots) {
		t.rebuild()
	}
	for i, mask, tag := t.first(sp.key()); ; i = (i + 1) & mask {
		if t.tags[i] > tagDeleted {
			continue
		}
		if t.tags[i] == tagEmpty {
			t.used++
		}
		t.tags[i], t.slots[i] = tag, sp
		t.n++
		return
	}
}

// del removes sp, which is in the table.
func (t *spanTable) del(sp *openSpan) {
	for i, mask, tag := t.first(sp.key()); ; i = (i + 1) & mask {
		if t.tags[i] != tag || t.slots[i] != sp {
			continue
		}
		t.n--
		t.slots[i] = nil
		if t.tags[(i+1)&mask] == tagEmpty {
			t.tags[i] = tagEmpty // no probe goes on past it
			t.used--
		} else {
			t.tags[i] = tagDeleted
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
	t.tags, t.slots, t.n, t.used = make([]uint8, size), make([]*openSpan, size), 0, 0
	for _, sp := range old {
		if sp != nil {
			t.put(sp)
		}
	}
}

// all ranges over the spans; the loop may delete spans (del), not add any.
func (t *spanTable) all() iter.Seq[*openSpan] {
	return func(yield func(*openSpan) bool) {
		for i := 0; i < len(t.slots); i++ {
			if sp := t.slots[i]; sp != nil && !yield(sp) {
				return
			}
		}
	}
}
