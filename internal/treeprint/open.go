package treeprint

import (
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// Defaults of the report of spans still open.
const (
	// DefaultOpenAfter is how long a span stays open before it is reported.
	DefaultOpenAfter = time.Second
	// DefaultMaxOpen bounds the open spans the printer follows, in spans; spans opened
	// beyond it are not reported (counted in Stats.OpenNotFollowed).
	DefaultMaxOpen = 65536
	// openRepeat is the period of the reports after the last fixed mark (1 min).
	openRepeat = 10 * time.Minute
)

// openMarks are the fixed marks after OpenAfter at which a span still open is
// reported again; after the last, every openRepeat.
var openMarks = []time.Duration{10 * time.Second, time.Minute}

// nextMark returns the open time at which a span reported at prev (0: not yet) is
// reported next, for the threshold after.
func nextMark(after, prev time.Duration) time.Duration {
	if prev == 0 {
		return after
	}
	for _, m := range openMarks {
		if m > prev {
			return m
		}
	}
	return (prev/openRepeat + 1) * openRepeat
}

// Stats counts what the printer did.
type Stats struct {
	// OpenReports is how many "still open" lines were printed.
	OpenReports uint64
	// OpenNotFollowed is how many spans opened while MaxOpen spans were followed.
	OpenNotFollowed uint64
}

type openKey struct {
	trace trace.TraceID
	span  trace.SpanID
}

// openSpan is a span the printer follows until it ends.
type openSpan struct {
	name, service string
	start         time.Time // the producer's start time
	seen          time.Time // when the printer learnt of it (local clock)
	next          time.Duration
}

// ObserveEvents follows the spans that open and end in events, to report the ones
// still open at the marks (OpenAfter, 10 s, 1 min, then every 10 min). It does no I/O.
func (p *Printer) ObserveEvents(events []bridge.Event) {
	if p.opts.OpenAfter <= 0 {
		return
	}
	now := p.opts.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range events {
		e := &events[i]
		key := openKey{e.TraceID, e.SpanID}
		switch b := e.Body.(type) {
		case *bridge.SpanOpen:
			p.follow(key, b.Name, e, now)
		case *bridge.Onset:
			p.follow(key, b.ScriptName, e, now)
		case *bridge.UpdateName:
			if sp := p.open[key]; sp != nil {
				sp.name = b.Name
			}
		case *bridge.SpanEndData, *bridge.Outcome:
			delete(p.open, key)
		}
	}
}

func (p *Printer) follow(key openKey, name string, e *bridge.Event, now time.Time) {
	if sp := p.open[key]; sp != nil { // a duplicate open
		sp.name = name
		return
	}
	if len(p.open) >= p.opts.MaxOpen {
		p.stats.OpenNotFollowed++
		return
	}
	start := e.Time
	if start.IsZero() || start.After(now) {
		start = now
	}
	p.open[key] = &openSpan{name: name, service: resourceService(e.Resource), start: start, seen: now,
		next: nextMark(p.opts.OpenAfter, 0)}
}

// forgetOpen stops following spans that reached the printer as spans (ended, or
// reported unfinished). Called with p.mu held.
func (p *Printer) forgetOpen(spans []bridge.Span) {
	if len(p.open) == 0 {
		return
	}
	for i := range spans {
		delete(p.open, openKey{spans[i].TraceID, spans[i].SpanID})
	}
}

// reportOpen prints a line for each span that passed its next mark. Called with p.mu
// held.
func (p *Printer) reportOpen(now time.Time) {
	for key, sp := range p.open {
		// The producer's clock gives the open time; the local one bounds it, so that a
		// producer clock ahead of ours cannot hide a span.
		open := max(now.Sub(sp.start), now.Sub(sp.seen))
		if open < sp.next {
			continue
		}
		p.stats.OpenReports++
		var b strings.Builder
		fmt.Fprintf(&b, "still open  %s  open %s", truncate(sp.name, 60), FormatDuration(open.Truncate(100*time.Millisecond)))
		if sp.service != "" {
			fmt.Fprintf(&b, "  service=%s", sp.service)
		}
		fmt.Fprintf(&b, "  trace=%s span=%s\n", key.trace, key.span)
		_, _ = p.w.Write([]byte(b.String()))
		for sp.next <= open {
			sp.next = nextMark(p.opts.OpenAfter, sp.next)
		}
	}
}

// Stats returns what the printer counted.
func (p *Printer) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func resourceService(r *resource.Resource) string {
	if r == nil {
		return ""
	}
	if v, ok := r.Set().Value("service.name"); ok {
		return v.Emit()
	}
	return ""
}
