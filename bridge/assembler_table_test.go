package bridge

import (
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// The span table against a Go map: random adds and deletes (keys drawn from a small
// set, so that probes run through tombstones and the table grows and shrinks), and
// deletes while ranging.
func TestSpanTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tab := newSpanTable()
	want := map[spanKey]*openSpan{}
	key := func() spanKey {
		n := rng.IntN(3000)
		return spanKey{trace.TraceID{byte(n % 3)}, trace.SpanID{byte(n >> 8), byte(n)}}
	}
	check := func() {
		t.Helper()
		if tab.len() != len(want) {
			t.Fatalf("%d spans, want %d", tab.len(), len(want))
		}
		seen := 0
		for sp := range tab.all() {
			if want[sp.key()] != sp {
				t.Fatalf("span %v ranged over, not in the table", sp.key())
			}
			seen++
		}
		if seen != len(want) {
			t.Fatalf("ranged over %d spans, want %d", seen, len(want))
		}
	}
	for range 20 {
		for range 5000 {
			k := key()
			sp := tab.get(k)
			if sp != want[k] {
				t.Fatalf("get %v: %p, want %p", k, sp, want[k])
			}
			switch {
			case sp != nil && rng.IntN(2) == 0:
				tab.del(sp)
				delete(want, k)
			case sp == nil && rng.IntN(4) != 0:
				sp = &openSpan{trace: k.trace, id: k.span}
				tab.put(sp)
				want[k] = sp
			}
		}
		check()
		// Delete about half while ranging: each span is seen once.
		before := len(want)
		seen := map[*openSpan]bool{}
		for sp := range tab.all() {
			if seen[sp] {
				t.Fatalf("span %v seen twice", sp.key())
			}
			seen[sp] = true
			if rng.IntN(2) == 0 {
				tab.del(sp)
				delete(want, sp.key())
			}
		}
		if len(seen) != before {
			t.Fatalf("ranged over %d spans, want %d", len(seen), before)
		}
		check()
	}
	for sp := range tab.all() {
		tab.del(sp)
	}
	if tab.len() != 0 {
		t.Fatalf("emptied: %d spans", tab.len())
	}
	for k := range want {
		if tab.get(k) != nil {
			t.Fatalf("emptied: %v still there", k)
		}
	}
}
