package live

import "github.com/stwbridge/stwbridge/bridge"

// openSpan is a span the hub saw open and not yet end.
type openSpan struct {
	key   spanKey
	seq   uint64       // when it was added, from 1; 0 for a free slot
	open  bridge.Event // its span_open (or onset)
	info  spanInfo
	onset bool // opened by an onset: its outcome ends it

	prev, next int32 // neighbours in opening order; -1 for none
}

// openTable holds the open spans by key and in opening order, in one slice reused
// through a free list: adding and removing spans allocates nothing once it has grown,
// which keeps Consume cheap.
type openTable struct {
	index      map[spanKey]int32
	slots      []openSpan
	free       []int32
	head, tail int32 // oldest and newest slot; -1 when empty
}

func newOpenTable() openTable {
	return openTable{index: make(map[spanKey]int32), head: -1, tail: -1}
}

func (t *openTable) len() int { return len(t.index) }

// get returns the span of key, nil when not open. The pointer is valid until the next
// add.
func (t *openTable) get(key spanKey) *openSpan {
	if i, ok := t.index[key]; ok {
		return &t.slots[i]
	}
	return nil
}

// add appends a span that is not in the table yet, as the newest.
func (t *openTable) add(sp openSpan) {
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		t.slots = append(t.slots, openSpan{})
		i = int32(len(t.slots) - 1)
	}
	sp.prev, sp.next = t.tail, -1
	t.slots[i] = sp
	if t.tail >= 0 {
		t.slots[t.tail].next = i
	} else {
		t.head = i
	}
	t.tail = i
	t.index[sp.key] = i
}

// remove drops the span of key, if open.
func (t *openTable) remove(key spanKey) {
	if i, ok := t.index[key]; ok {
		t.removeAt(i)
	}
}

// take returns what is known of the span of key and drops it; nothing is known when
// it is not open.
func (t *openTable) take(key spanKey) spanInfo {
	i, ok := t.index[key]
	if !ok {
		return spanInfo{}
	}
	info := t.slots[i].info
	t.removeAt(i)
	return info
}

// removeAt drops the span in slot i.
func (t *openTable) removeAt(i int32) {
	sp := &t.slots[i]
	delete(t.index, sp.key)
	if sp.prev >= 0 {
		t.slots[sp.prev].next = sp.next
	} else {
		t.head = sp.next
	}
	if sp.next >= 0 {
		t.slots[sp.next].prev = sp.prev
	} else {
		t.tail = sp.prev
	}
	*sp = openSpan{} // let go of the event's body
	t.free = append(t.free, i)
}

// oldest returns the span open longest, nil when empty.
func (t *openTable) oldest() *openSpan {
	if t.head < 0 {
		return nil
	}
	return &t.slots[t.head]
}
