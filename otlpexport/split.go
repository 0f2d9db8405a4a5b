package otlpexport

import (
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The size estimates below are upper bounds of the protobuf encoding: a field of an
// embedded message costs its tag (1 byte for the fields used here), its length as a
// varint, and its content.

// fieldSize is the encoded size of an embedded message field whose content is n bytes.
func fieldSize(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// groupOverhead bounds what a resource or scope group adds around its records: its
// header (resource or scope, schema URL) plus the tag and a 5-byte length.
func groupOverhead(header proto.Message) int { return 1 + 5 + proto.Size(header) }

// layout is how one signal's request nests its items, for split: R the request, G
// its resource groups, S their scope groups, I the items (log records or spans).
type layout[R, G, S, I proto.Message] struct {
	groups func(R) []G
	scopes func(G) []S
	items  func(S) []I
	// newRequest returns an empty request; newGroup and newScope an empty group with
	// the resource (scope) and schema URL of the one given.
	newRequest func() R
	newGroup   func(G) G
	newScope   func(S) S
	// addGroup, addScope and addItem append to the request or group.
	addGroup func(R, G)
	addScope func(G, S)
	addItem  func(S, I)
}

var (
	logsLayout = layout[*collogspb.ExportLogsServiceRequest, *logspb.ResourceLogs, *logspb.ScopeLogs, *logspb.LogRecord]{
		groups:     (*collogspb.ExportLogsServiceRequest).GetResourceLogs,
		scopes:     (*logspb.ResourceLogs).GetScopeLogs,
		items:      (*logspb.ScopeLogs).GetLogRecords,
		newRequest: func() *collogspb.ExportLogsServiceRequest { return &collogspb.ExportLogsServiceRequest{} },
		newGroup: func(g *logspb.ResourceLogs) *logspb.ResourceLogs {
			return &logspb.ResourceLogs{Resource: g.GetResource(), SchemaUrl: g.GetSchemaUrl()}
		},
		newScope: func(s *logspb.ScopeLogs) *logspb.ScopeLogs {
			return &logspb.ScopeLogs{Scope: s.GetScope(), SchemaUrl: s.GetSchemaUrl()}
		},
		addGroup: func(r *collogspb.ExportLogsServiceRequest, g *logspb.ResourceLogs) {
			r.ResourceLogs = append(r.ResourceLogs, g)
		},
		addScope: func(g *logspb.ResourceLogs, s *logspb.ScopeLogs) { g.ScopeLogs = append(g.ScopeLogs, s) },
		addItem:  func(s *logspb.ScopeLogs, rec *logspb.LogRecord) { s.LogRecords = append(s.LogRecords, rec) },
	}
	tracesLayout = layout[*coltracepb.ExportTraceServiceRequest, *tracepb.ResourceSpans, *tracepb.ScopeSpans, *tracepb.Span]{
		groups:     (*coltracepb.ExportTraceServiceRequest).GetResourceSpans,
		scopes:     (*tracepb.ResourceSpans).GetScopeSpans,
		items:      (*tracepb.ScopeSpans).GetSpans,
		newRequest: func() *coltracepb.ExportTraceServiceRequest { return &coltracepb.ExportTraceServiceRequest{} },
		newGroup: func(g *tracepb.ResourceSpans) *tracepb.ResourceSpans {
			return &tracepb.ResourceSpans{Resource: g.GetResource(), SchemaUrl: g.GetSchemaUrl()}
		},
		newScope: func(s *tracepb.ScopeSpans) *tracepb.ScopeSpans {
			return &tracepb.ScopeSpans{Scope: s.GetScope(), SchemaUrl: s.GetSchemaUrl()}
		},
		addGroup: func(r *coltracepb.ExportTraceServiceRequest, g *tracepb.ResourceSpans) {
			r.ResourceSpans = append(r.ResourceSpans, g)
		},
		addScope: func(g *tracepb.ResourceSpans, s *tracepb.ScopeSpans) { g.ScopeSpans = append(g.ScopeSpans, s) },
		addItem:  func(s *tracepb.ScopeSpans, sp *tracepb.Span) { s.Spans = append(s.Spans, sp) },
	}
)

// splitLogs splits req into requests of at most limit bytes each (see split).
func splitLogs(req *collogspb.ExportLogsServiceRequest, limit int) []*collogspb.ExportLogsServiceRequest {
	return split(&logsLayout, req, limit)
}

// splitTraces is splitLogs for spans.
func splitTraces(req *coltracepb.ExportTraceServiceRequest, limit int) []*coltracepb.ExportTraceServiceRequest {
	return split(&tracesLayout, req, limit)
}

// split splits req into requests of at most limit bytes each, keeping the order of
// the items and their resource and scope. An item too big on its own is sent alone.
func split[R, G, S, I proto.Message](l *layout[R, G, S, I], req R, limit int) []R {
	var out []R
	cur, size, n := l.newRequest(), 0, 0
	for _, g := range l.groups(req) {
		gCost := groupOverhead(l.newGroup(g))
		var (
			curG G
			inG  bool // whether cur holds curG yet
		)
		for _, s := range l.scopes(g) {
			sCost := groupOverhead(l.newScope(s))
			var (
				curS    S
				inScope bool
			)
			for _, it := range l.items(s) {
				cost := fieldSize(proto.Size(it))
				extra := 0
				if !inScope {
					extra += sCost
					if !inG {
						extra += gCost
					}
				}
				if n > 0 && size+extra+cost > limit {
					out = append(out, cur)
					cur, size, n = l.newRequest(), 0, 0
					inG, inScope = false, false
					extra = gCost + sCost
				}
				if !inG {
					curG, inG = l.newGroup(g), true
					l.addGroup(cur, curG)
				}
				if !inScope {
					curS, inScope = l.newScope(s), true
					l.addScope(curG, curS)
				}
				l.addItem(curS, it)
				size += extra + cost
				n++
			}
		}
	}
	if n > 0 {
		out = append(out, cur)
	}
	return out
}

// countLogRecords returns the number of records in req.
func countLogRecords(req *collogspb.ExportLogsServiceRequest) int {
	n := 0
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			n += len(sl.GetLogRecords())
		}
	}
	return n
}

// countSpans returns the number of spans in req.
func countSpans(req *coltracepb.ExportTraceServiceRequest) int {
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	return n
}
