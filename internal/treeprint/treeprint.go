// Package treeprint prints spans as a readable indented tree per trace: what stwbridge
// shows on stdout when it has no downstream to forward to.
//
// Spans of a trace that arrive close together (within GroupWait of each other) are
// printed as one tree; a span whose parent was printed earlier starts a new tree that
// names its parent. Given the lifecycle events too (ObserveEvents), it reports spans
// still open at marks (OpenAfter, 10 s, 1 min, then every 10 min), before they end.
package treeprint

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/options"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of the printer.
const (
	// DefaultGroupWait is how long the printer waits for more spans of a trace.
	DefaultGroupWait = 500 * time.Millisecond
	// DefaultMaxAttributes is how many attributes are shown per span.
	DefaultMaxAttributes = 4
)

// Options configure a Printer. Zero fields take the defaults.
type Options struct {
	// GroupWait is how long to wait after a trace's last span before printing it.
	// Default DefaultGroupWait.
	GroupWait time.Duration
	// MaxAttributes is how many attributes are shown per span. Default
	// DefaultMaxAttributes.
	MaxAttributes int
	// OpenAfter is how long a span is open before a "still open" line reports it.
	// Default DefaultOpenAfter; negative: never.
	OpenAfter time.Duration
	// MaxOpen bounds the open spans followed for those reports. Default DefaultMaxOpen.
	MaxOpen int

	now func() time.Time // the clock; tests set it, default time.Now
}

// Option changes Options.
type Option func(*Options)

// WithGroupWait sets how long to wait after a trace's last span before printing it.
func WithGroupWait(d time.Duration) Option { return func(o *Options) { o.GroupWait = d } }

// WithMaxAttributes sets how many attributes are shown per span.
func WithMaxAttributes(n int) Option { return func(o *Options) { o.MaxAttributes = n } }

// WithOpenAfter sets how long a span is open before a "still open" line reports it;
// d < 0 turns those reports off.
func WithOpenAfter(d time.Duration) Option { return func(o *Options) { o.OpenAfter = d } }

// WithMaxOpen bounds the open spans followed for "still open" reports.
func WithMaxOpen(n int) Option { return func(o *Options) { o.MaxOpen = n } }

// Printer is a bridge.SpanConsumer that prints spans, grouped per trace, to a writer.
type Printer struct {
	opts Options

	mu      sync.Mutex
	w       io.Writer
	pending map[trace.TraceID]*group
	open    map[openKey]*openSpan // spans followed for "still open" reports
	stats   Stats
	closed  bool

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type group struct {
	spans []bridge.Span
	last  time.Time
}

var _ bridge.SpanConsumer = (*Printer)(nil)

// New returns a printer writing to w; it prints each trace GroupWait after its last span.
func New(w io.Writer, opt ...Option) *Printer {
	opts := options.Apply(opt)
	options.Positive(&opts.GroupWait, DefaultGroupWait)
	options.Positive(&opts.MaxAttributes, DefaultMaxAttributes)
	if opts.now == nil {
		opts.now = time.Now
	}
	options.NonZero(&opts.OpenAfter, DefaultOpenAfter)
	options.Positive(&opts.MaxOpen, DefaultMaxOpen)
	p := &Printer{opts: opts, w: w, pending: map[trace.TraceID]*group{}, open: map[openKey]*openSpan{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *Printer) loop() {
	defer close(p.done)
	t := time.NewTicker(max(p.opts.GroupWait/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.printDue(false)
		}
	}
}

// ConsumeSpans buffers spans until their trace has been quiet for GroupWait.
func (p *Printer) ConsumeSpans(_ context.Context, spans []bridge.Span) error {
	now := p.opts.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetOpen(spans)
	if p.closed {
		p.printLocked(spans)
		return nil
	}
	for _, s := range spans {
		g := p.pending[s.TraceID]
		if g == nil {
			g = &group{}
			p.pending[s.TraceID] = g
		}
		g.spans = append(g.spans, s)
		g.last = now
	}
	return nil
}

// Flush prints every buffered trace now.
func (p *Printer) Flush() { p.printDue(true) }

// ForceFlush prints every buffered trace now.
func (p *Printer) ForceFlush(context.Context) error {
	p.Flush()
	return nil
}

// Shutdown prints what is buffered and stops the printer; later spans print at once.
func (p *Printer) Shutdown(context.Context) error {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.Flush()
	})
	return nil
}

// printDue prints the traces quiet for GroupWait (all of them with all), oldest first.
func (p *Printer) printDue(all bool) {
	now := p.opts.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	type due struct {
		id trace.TraceID
		g  *group
	}
	var ready []due
	for id, g := range p.pending {
		if all || now.Sub(g.last) >= p.opts.GroupWait {
			ready = append(ready, due{id, g})
		}
	}
	sort.Slice(ready, func(i, j int) bool { return firstStart(ready[i].g.spans).Before(firstStart(ready[j].g.spans)) })
	for _, d := range ready {
		delete(p.pending, d.id)
		p.printLocked(d.g.spans)
	}
	if !all {
		p.reportOpen(now)
	}
}

func (p *Printer) printLocked(spans []bridge.Span) {
	if len(spans) == 0 {
		return
	}
	var b strings.Builder
	Format(&b, spans, p.opts.MaxAttributes)
	_, _ = io.WriteString(p.w, b.String())
}

func firstStart(spans []bridge.Span) time.Time {
	t := spans[0].Start
	for _, s := range spans[1:] {
		if s.Start.Before(t) {
			t = s.Start
		}
	}
	return t
}

// Format writes the spans of one trace as an indented tree, showing at most maxAttrs
// attributes per span. Spans whose parent is not among them are roots.
func Format(w io.Writer, spans []bridge.Span, maxAttrs int) {
	if len(spans) == 0 {
		return
	}
	byID := make(map[trace.SpanID]int, len(spans))
	for i, s := range spans {
		byID[s.SpanID] = i
	}
	children := map[trace.SpanID][]int{}
	var roots []int
	for i, s := range spans {
		if _, ok := byID[s.Parent]; ok && s.Parent.IsValid() && s.Parent != s.SpanID {
			children[s.Parent] = append(children[s.Parent], i)
		} else {
			roots = append(roots, i)
		}
	}
	byStart := func(list []int) {
		sort.SliceStable(list, func(a, b int) bool { return spans[list[a]].Start.Before(spans[list[b]].Start) })
	}
	byStart(roots)
	for _, list := range children {
		byStart(list)
	}

	// Lay out the lines first, to align the columns after the names.
	type line struct {
		prefix string
		span   *bridge.Span
	}
	var lines []line
	seen := make([]bool, len(spans))
	var walk func(i int, lead, branch string)
	walk = func(i int, lead, branch string) {
		if seen[i] { // a cycle in bad input: print each span once
			return
		}
		seen[i] = true
		lines = append(lines, line{lead + branch, &spans[i]})
		kids := children[spans[i].SpanID]
		next := lead
		switch branch {
		case "├─ ":
			next += "│  "
		case "└─ ":
			next += "   "
		}
		for k, c := range kids {
			if k == len(kids)-1 {
				walk(c, next, "└─ ")
			} else {
				walk(c, next, "├─ ")
			}
		}
	}
	for _, r := range roots {
		walk(r, "", "")
	}
	for i := range spans { // spans only reachable through a cycle
		if !seen[i] {
			walk(i, "", "")
		}
	}

	width := 0
	for _, l := range lines {
		width = max(width, runeLen(l.prefix)+runeLen(truncate(l.span.Name, 60)))
	}

	unfinished := 0
	for _, s := range spans {
		if s.Unfinished {
			unfinished++
		}
	}
	fmt.Fprintf(w, "trace %s", spans[0].TraceID)
	for i := range spans {
		if svc := serviceName(&spans[i]); svc != "" {
			fmt.Fprintf(w, "  service=%s", svc)
			break
		}
	}
	fmt.Fprintf(w, "  %d span%s", len(spans), plural(len(spans)))
	if unfinished > 0 {
		fmt.Fprintf(w, ", %d unfinished", unfinished)
	}
	fmt.Fprintln(w)
	for _, l := range lines {
		s := l.span
		name := truncate(s.Name, 60)
		var b strings.Builder
		b.WriteString("  ")
		b.WriteString(l.prefix)
		b.WriteString(name)
		b.WriteString(strings.Repeat(" ", width-runeLen(l.prefix)-runeLen(name)))
		fmt.Fprintf(&b, "  %9s", FormatDuration(s.End.Sub(s.Start)))
		if s.Unfinished {
			b.WriteString("  [UNFINISHED]")
		}
		if st := formatStatus(s.Status); st != "" {
			b.WriteString("  ")
			b.WriteString(st)
		}
		if l.prefix == "" && s.Parent.IsValid() {
			fmt.Fprintf(&b, "  (parent %s)", s.Parent)
		}
		if attrs := keyAttributes(s.Attributes, maxAttrs); attrs != "" {
			b.WriteString("  ")
			b.WriteString(attrs)
		}
		fmt.Fprintln(w, b.String())
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func runeLen(s string) int { return len([]rune(s)) }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func serviceName(s *bridge.Span) string { return resourceService(s.Resource) }

func formatStatus(st bridge.Status) string {
	switch st.Code {
	case codes.Ok:
		return "OK"
	case codes.Error:
		if st.Description != "" {
			return fmt.Sprintf("ERROR %q", truncate(st.Description, 60))
		}
		return "ERROR"
	}
	return ""
}

// preferred are the attributes shown first when present, in this order.
var preferred = []attribute.Key{
	"http.request.method", "http.method", "http.route", "url.path", "http.target",
	"http.response.status_code", "http.status_code", "rpc.service", "rpc.method",
	"db.system", "db.operation", "db.statement", "messaging.system", "messaging.destination.name",
	"error.type", "exception.type",
}

// keyAttributes formats up to n attributes, the well-known ones first, then the rest by
// key. stw.* attributes are left out: the markers show them.
func keyAttributes(attrs []attribute.KeyValue, n int) string {
	var shown []attribute.KeyValue
	for _, k := range preferred {
		for _, kv := range attrs {
			if kv.Key == k {
				shown = append(shown, kv)
				break
			}
		}
	}
	rest := make([]attribute.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		if !slices.Contains(preferred, kv.Key) && !strings.HasPrefix(string(kv.Key), "stw.") {
			rest = append(rest, kv)
		}
	}
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Key < rest[j].Key })
	shown = append(shown, rest...)
	extra := 0
	if len(shown) > n {
		extra = len(shown) - n
		shown = shown[:n]
	}
	parts := make([]string, 0, len(shown)+1)
	for _, kv := range shown {
		v := kv.Value.Emit()
		if kv.Value.Type() == attribute.STRING && (v == "" || strings.ContainsAny(v, " \t\n\"=")) {
			v = fmt.Sprintf("%q", truncate(v, 40))
		} else {
			v = truncate(v, 40)
		}
		parts = append(parts, string(kv.Key)+"="+v)
	}
	if extra > 0 {
		parts = append(parts, fmt.Sprintf("+%d", extra))
	}
	return strings.Join(parts, " ")
}

// FormatDuration writes d with three significant digits: 850µs, 12.3ms, 1.25s, 2m3s.
func FormatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + FormatDuration(-d)
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return sig3(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return sig3(float64(d)/float64(time.Millisecond)) + "ms"
	case d < time.Minute:
		return sig3(d.Seconds()) + "s"
	}
	return d.Round(time.Second).String()
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// Println writes one line between trees (never inside one).
func (p *Printer) Println(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, line+"\n")
}
