package live

import (
	"slices"
	"testing"
)

func TestOpenTable(t *testing.T) {
	tb := newOpenTable()
	key := func(b byte) spanKey { return spanKey{tid(1), sid(b)} }
	order := func() []byte {
		var out []byte
		tb.each(func(sp *openSpan) { out = append(out, sp.key.span[7]) })
		return out
	}
	for _, b := range []byte{1, 2, 3} {
		tb.add(openSpan{key: key(b), info: spanInfo{known: true, name: string('a' + b - 1)}})
	}
	tb.remove(key(2))
	tb.remove(key(9)) // not there: nothing happens
	tb.add(openSpan{key: key(4)})
	if got := order(); !slices.Equal(got, []byte{1, 3, 4}) || tb.len() != 3 || len(tb.slots) != 3 {
		t.Fatalf("order %v, len %d, slots %d; want [1 3 4], 3, 3 (the freed slot reused)", got, tb.len(), len(tb.slots))
	}
	if tb.get(key(3)).info.name != "c" || tb.get(key(2)) != nil {
		t.Fatal("get found the wrong span")
	}
	tb.remove(tb.oldest().key)
	if info := tb.take(key(3)); info.name != "c" || tb.get(key(3)) != nil {
		t.Fatalf("take of span 3: %+v, still there: %v", info, tb.get(key(3)) != nil)
	}
	if info := tb.take(key(3)); info.known {
		t.Fatal("take of a span not open knew it")
	}
	if got := order(); !slices.Equal(got, []byte{4}) || tb.oldest().key != key(4) {
		t.Fatalf("order %v", got)
	}
	tb.remove(key(4))
	if tb.oldest() != nil || tb.len() != 0 || tb.head != -1 || tb.tail != -1 {
		t.Fatalf("empty table: %+v", tb)
	}
}

// each calls fn for every open span, oldest first.
func (t *openTable) each(fn func(*openSpan)) {
	for i := t.head; i >= 0; i = t.slots[i].next {
		fn(&t.slots[i])
	}
}
