package live

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// Query parameters of GET /v1/live. Every one is optional; together they all apply.
const (
	// ParamService keeps events whose producer's service.name is exactly this.
	ParamService = "service"
	// ParamTraceID keeps the events of one trace (32 hex digits).
	ParamTraceID = "trace_id"
	// ParamSearch keeps events whose span's current name contains this text (any
	// case), and logs and exceptions whose text contains it.
	ParamSearch = "search"
	// ParamMinOpen (a Go duration such as 2s) keeps only the spans that stay open at
	// least this long: a span's span_open and what followed it are sent once it has
	// been open that long (at once for a span already that old), and nothing of a span
	// that ends sooner is sent.
	ParamMinOpen = "min_open"
	// ParamStatus keeps how things ended: "error" (span_end with status error or
	// unfinished, status set to error, exceptions, outcomes other than ok), "ok"
	// (span_end neither error nor unfinished, outcome ok) or "unfinished" (span_end of
	// spans that never really ended). Each span_end line carries the span's name,
	// parent, start and duration, so it reads alone.
	ParamStatus = "status"
	// ParamKeepAlive (a Go duration, 10ms to 10m) sets this watcher's keep-alive
	// interval.
	ParamKeepAlive = "keepalive"
)

// Values of ParamStatus.
const (
	FilterError      = "error"
	FilterOK         = "ok"
	FilterUnfinished = "unfinished"
)

// Filter is a watcher's choice of events; its zero value keeps everything.
type Filter struct {
	Service   string
	TraceID   trace.TraceID // zero: any trace
	Search    string
	MinOpen   time.Duration
	Status    string // "", FilterError, FilterOK or FilterUnfinished
	KeepAlive time.Duration
}

var knownParams = map[string]bool{
	ParamService: true, ParamTraceID: true, ParamSearch: true,
	ParamMinOpen: true, ParamStatus: true, ParamKeepAlive: true,
}

// ParseFilter reads a Filter from the query of GET /v1/live. Its errors say which
// parameter was wrong and what it takes.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for k, vs := range q {
		if !knownParams[k] {
			known := make([]string, 0, len(knownParams))
			for p := range knownParams {
				known = append(known, p)
			}
			sort.Strings(known)
			return Filter{}, fmt.Errorf("unknown query parameter %q; known: %s", k, strings.Join(known, ", "))
		}
		if len(vs) > 1 {
			return Filter{}, fmt.Errorf("query parameter %q given %d times; give it once", k, len(vs))
		}
	}
	f.Service = q.Get(ParamService)
	f.Search = q.Get(ParamSearch)
	if s := q.Get(ParamTraceID); s != "" {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != len(f.TraceID) {
			return Filter{}, fmt.Errorf("trace_id %q is not 32 hex digits", s)
		}
		copy(f.TraceID[:], b)
		if !f.TraceID.IsValid() {
			return Filter{}, fmt.Errorf("trace_id %q is all zeros, which names no trace", s)
		}
	}
	if s := q.Get(ParamMinOpen); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return Filter{}, fmt.Errorf("min_open %q is not a duration of zero or more, such as 500ms or 2s", s)
		}
		f.MinOpen = d
	}
	switch s := q.Get(ParamStatus); s {
	case "", FilterError, FilterOK, FilterUnfinished:
		f.Status = s
	default:
		return Filter{}, fmt.Errorf("status %q is not one of error, ok, unfinished", s)
	}
	if s := q.Get(ParamKeepAlive); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 10*time.Millisecond || d > 10*time.Minute {
			return Filter{}, fmt.Errorf("keepalive %q is not a duration from 10ms to 10m, such as 15s", s)
		}
		f.KeepAlive = d
	}
	return f, nil
}

// Query returns the filter as query parameters for GET /v1/live.
func (f Filter) Query() url.Values {
	q := url.Values{}
	if f.Service != "" {
		q.Set(ParamService, f.Service)
	}
	if f.TraceID.IsValid() {
		q.Set(ParamTraceID, f.TraceID.String())
	}
	if f.Search != "" {
		q.Set(ParamSearch, f.Search)
	}
	if f.MinOpen > 0 {
		q.Set(ParamMinOpen, f.MinOpen.String())
	}
	if f.Status != "" {
		q.Set(ParamStatus, f.Status)
	}
	if f.KeepAlive > 0 {
		q.Set(ParamKeepAlive, f.KeepAlive.String())
	}
	return q
}

// matchScope applies the filters that depend on where an event comes from (trace,
// service); they are applied before min_open holds anything back.
func (f *Filter) matchScope(en *entry) bool {
	if f.TraceID.IsValid() && en.ev.TraceID != f.TraceID {
		return false
	}
	if f.Service != "" && en.span.service != f.Service {
		return false
	}
	return true
}

// matchContent applies the filters on what an event says (search, status).
func (f *Filter) matchContent(en *entry) bool {
	if f.Search != "" && !f.matchSearch(en) {
		return false
	}
	if f.Status != "" && !matchStatus(f.Status, en.ev.Body) {
		return false
	}
	return true
}

func (f *Filter) matchSearch(en *entry) bool {
	if containsFold(en.span.name, f.Search) {
		return true
	}
	switch b := en.ev.Body.(type) {
	case *bridge.SpanOpen:
		return containsFold(b.Name, f.Search)
	case *bridge.UpdateName:
		return containsFold(b.Name, f.Search)
	case *bridge.Log:
		return containsFold(b.Message, f.Search)
	case *bridge.DiagnosticChannel:
		return containsFold(b.Channel, f.Search) || containsFold(b.Message, f.Search)
	case *bridge.Exception:
		return containsFold(b.Name, f.Search) || containsFold(b.Message, f.Search)
	}
	return false
}

func matchStatus(want string, body bridge.Body) bool {
	switch b := body.(type) {
	case *bridge.SpanEndData:
		switch want {
		case FilterError:
			return b.Unfinished || b.Status.Code == codes.Error
		case FilterOK:
			return !b.Unfinished && b.Status.Code != codes.Error
		case FilterUnfinished:
			return b.Unfinished
		}
	case *bridge.StatusUpdate:
		return want == FilterError && b.Status.Code == codes.Error
	case *bridge.Exception:
		return want == FilterError
	case *bridge.Outcome:
		switch want {
		case FilterError:
			return b.Outcome != "ok"
		case FilterOK:
			return b.Outcome == "ok"
		}
	}
	return false
}

func containsFold(s, sub string) bool {
	if len(sub) > len(s) {
		return false
	}
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
