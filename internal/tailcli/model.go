package tailcli

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stwbridge/stwbridge/internal/live"
)

// Bounds of the view's memory.
const (
	// maxTraces is how many traces the view holds; beyond it the oldest finished one
	// (else the oldest) is forgotten.
	maxTraces = 200
	// maxSpansPerTrace is how many spans of one trace the view holds; later ones are
	// counted, not shown.
	maxSpansPerTrace = 500
	// maxNotesPerSpan is how many logs and exceptions one span keeps (the latest).
	maxNotesPerSpan = 20
	// keepFinished is how long a trace whose spans have all ended stays on screen.
	keepFinished = time.Minute
	// maxNotices is how many stream-wide notices (diagnostics) are kept.
	maxNotices = 5
)

// span is what the view knows of one span.
type span struct {
	id, parent string
	name       string
	oldName    string // the name before the latest rename
	service    string
	start      time.Time
	end        time.Time
	ended      bool
	status     string // live.StatusOK, live.StatusError, live.StatusUnset or ""
	statusDesc string
	unfinished bool
	notes      []note
	arrival    int64 // order of first sight, to sort spans without a start
}

// note is a log line, an exception or a span event shown under its span.
type note struct {
	at   time.Time
	kind string // "log", "exception", "return"
	text string
	bad  bool // shown as an error
}

// traceView is what the view knows of one trace.
type traceView struct {
	id         string
	service    string
	spans      map[string]*span
	hidden     int // spans beyond maxSpansPerTrace
	arrival    int64
	finishedAt time.Time // local time when its last open span ended; zero while one is open
}

// state is the tail's model of the stream: traces of spans, bounded. It is plain
// data, updated by apply and read by render, so that tests drive it directly.
type state struct {
	traces  map[string]*traceView
	seq     int64
	skipped uint64 // events the server said this watcher missed
	forgot  uint64 // traces forgotten to stay within maxTraces
	notices []string
}

func newState() *state {
	return &state{traces: make(map[string]*traceView)}
}

// apply records one event; now is the local time it arrived.
func (s *state) apply(e *live.Event, now time.Time) {
	switch e.Type {
	case live.TypeKeepAlive:
		return
	case live.TypeSkipped:
		s.skipped += e.Skipped
		return
	}
	if e.TraceID == "" {
		if e.Type == "diagnostic" {
			s.notice(fmt.Sprintf("producer dropped %d events", e.DroppedEvents))
		}
		return
	}
	if e.Type == "outcome" && s.traces[e.TraceID] != nil && s.traces[e.TraceID].spans[e.SpanID] != nil &&
		s.traces[e.TraceID].spans[e.SpanID].ended {
		return // a local stream's outcome after its root span's end: nothing new
	}
	if e.Type == "outcome" && (s.traces[e.TraceID] == nil || s.traces[e.TraceID].spans[e.SpanID] == nil) && e.Name == "" {
		return // the outcome of an invocation not in view
	}
	tr := s.trace(e, now)
	if e.SpanID == "" {
		return
	}
	sp := tr.spans[e.SpanID]
	if sp == nil {
		if len(tr.spans) >= maxSpansPerTrace {
			tr.hidden++
			return
		}
		s.seq++
		sp = &span{id: e.SpanID, arrival: s.seq}
		tr.spans[e.SpanID] = sp
		tr.finishedAt = time.Time{}
	}
	// Every line carries what the server knows of its span: fill what is missing.
	if sp.name == "" {
		sp.name = e.Name
	}
	if sp.parent == "" {
		sp.parent = e.ParentSpanID
	}
	if sp.service == "" {
		sp.service = e.Service
	}
	if sp.start.IsZero() {
		sp.start = parseTime(e.Start)
	}
	at := parseTime(e.Time)
	switch e.Type {
	case "span_open", "onset":
		if e.Name != "" {
			sp.name = e.Name
		}
		if sp.start.IsZero() {
			sp.start = at
		}
	case "update_name":
		if e.Name != "" && e.Name != sp.name {
			sp.oldName = cmp.Or(e.OldName, sp.name)
			sp.name = e.Name
		}
	case "status":
		if e.Status != nil {
			sp.status, sp.statusDesc = e.Status.Code, e.Status.Description
		}
	case "span_end", "outcome":
		sp.ended = true
		sp.end = at
		if e.Name != "" && sp.name == "" {
			sp.name = e.Name
		}
		if e.DurationNS > 0 {
			sp.end = sp.start.Add(time.Duration(e.DurationNS))
		}
		if sp.start.IsZero() && e.DurationNS > 0 {
			sp.start = at.Add(-time.Duration(e.DurationNS))
		}
		if e.Type == "outcome" {
			sp.status = live.StatusOK
			if e.IsError() {
				sp.status, sp.statusDesc = live.StatusError, e.Outcome
			}
		} else if e.Status != nil {
			sp.status, sp.statusDesc = e.Status.Code, e.Status.Description
		}
		sp.unfinished = e.Unfinished
		for _, ev := range e.Events {
			if ev.Name == "exception" {
				sp.addNote(note{at: parseTime(ev.Time), kind: "exception", text: exceptionText(ev.Attributes), bad: true})
			}
		}
	case "log":
		sp.addNote(note{at: at, kind: "log", text: logText(e.Level, e.Message), bad: e.Level == "error"})
	case "exception":
		if e.Exception != nil {
			sp.addNote(note{at: at, kind: "exception", text: joinNonEmpty(": ", e.Exception.Name, e.Exception.Message), bad: true})
		}
	case "return":
		if e.StatusCode != 0 {
			sp.addNote(note{at: at, kind: "return", text: fmt.Sprintf("returned %d", e.StatusCode), bad: e.StatusCode >= 500})
		}
	}
	if sp.ended && tr.openSpans() == 0 {
		tr.finishedAt = now
	}
}

// trace returns the trace of e, making room for it when it is new.
func (s *state) trace(e *live.Event, now time.Time) *traceView {
	tr := s.traces[e.TraceID]
	if tr == nil {
		if len(s.traces) >= maxTraces {
			s.evict()
		}
		s.seq++
		tr = &traceView{id: e.TraceID, spans: make(map[string]*span), arrival: s.seq}
		s.traces[e.TraceID] = tr
	}
	if tr.service == "" {
		tr.service = e.Service
	}
	return tr
}

// evict forgets the oldest finished trace, or the oldest trace when all are open.
func (s *state) evict() {
	var victim *traceView
	for _, tr := range s.traces {
		if victim == nil ||
			(!tr.finishedAt.IsZero() && victim.finishedAt.IsZero()) ||
			(tr.finishedAt.IsZero() == victim.finishedAt.IsZero() && tr.arrival < victim.arrival) {
			victim = tr
		}
	}
	if victim != nil {
		delete(s.traces, victim.id)
		s.forgot++
	}
}

// prune forgets traces that finished more than keepFinished ago.
func (s *state) prune(now time.Time) {
	for id, tr := range s.traces {
		if !tr.finishedAt.IsZero() && now.Sub(tr.finishedAt) > keepFinished {
			delete(s.traces, id)
		}
	}
}

func (s *state) notice(msg string) {
	s.notices = append(s.notices, msg)
	if len(s.notices) > maxNotices {
		s.notices = slices.Delete(s.notices, 0, len(s.notices)-maxNotices)
	}
}

func (sp *span) addNote(n note) {
	sp.notes = append(sp.notes, n)
	if len(sp.notes) > maxNotesPerSpan {
		sp.notes = slices.Delete(sp.notes, 0, len(sp.notes)-maxNotesPerSpan)
	}
}

func (tr *traceView) openSpans() int {
	n := 0
	for _, sp := range tr.spans {
		if !sp.ended {
			n++
		}
	}
	return n
}

// ordered returns the traces oldest first.
func (s *state) ordered() []*traceView {
	out := make([]*traceView, 0, len(s.traces))
	for _, tr := range s.traces {
		out = append(out, tr)
	}
	slices.SortFunc(out, func(a, b *traceView) int { return cmp.Compare(a.arrival, b.arrival) })
	return out
}

// children returns, per parent span id, the spans under it, and the trace's top
// spans (roots, and spans whose parent is not in view), each sorted by start.
func (tr *traceView) children() (roots []*span, kids map[string][]*span) {
	kids = make(map[string][]*span)
	for _, sp := range tr.spans {
		if sp.parent != "" && sp.parent != sp.id && tr.spans[sp.parent] != nil {
			kids[sp.parent] = append(kids[sp.parent], sp)
		} else {
			roots = append(roots, sp)
		}
	}
	byStart := func(a, b *span) int {
		if c := a.start.Compare(b.start); c != 0 && !a.start.IsZero() && !b.start.IsZero() {
			return c
		}
		return cmp.Compare(a.arrival, b.arrival)
	}
	slices.SortFunc(roots, byStart)
	for _, k := range kids {
		slices.SortFunc(k, byStart)
	}
	return roots, kids
}

// matches reports whether the trace has a span, service or note containing text.
func (tr *traceView) matches(text string) bool {
	if text == "" {
		return true
	}
	text = strings.ToLower(text)
	has := func(s string) bool { return strings.Contains(strings.ToLower(s), text) }
	if has(tr.id) || has(tr.service) {
		return true
	}
	for _, sp := range tr.spans {
		if has(sp.name) || has(sp.oldName) || has(sp.service) {
			return true
		}
		for _, n := range sp.notes {
			if has(n.text) {
				return true
			}
		}
	}
	return false
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func logText(level, msg string) string {
	return joinNonEmpty(": ", level, msg)
}

func exceptionText(attrs map[string]any) string {
	str := func(k string) string {
		if v, ok := attrs[k].(string); ok {
			return v
		}
		return ""
	}
	return cmp.Or(joinNonEmpty(": ", str("exception.type"), str("exception.message")), "exception")
}

func joinNonEmpty(sep string, parts ...string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// formatDuration writes d short and readable: 850µs, 12.3ms, 1.25s, 2m03s, 1h02m.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// formatElapsed writes the time a span has been open, to a tenth of a second.
func formatElapsed(d time.Duration) string {
	switch {
	case d < 0:
		return "0.0s"
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return formatDuration(d)
}
