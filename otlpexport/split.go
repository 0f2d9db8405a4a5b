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

// splitLogs splits req into requests of at most limit bytes each, keeping the order of
// the records and their resource and scope. A record too big on its own is sent alone.
func splitLogs(req *collogspb.ExportLogsServiceRequest, limit int) []*collogspb.ExportLogsServiceRequest {
	var out []*collogspb.ExportLogsServiceRequest
	var cur *collogspb.ExportLogsServiceRequest
	size, records := 0, 0
	flush := func() {
		if cur != nil && records > 0 {
			out = append(out, cur)
		}
		cur, size, records = &collogspb.ExportLogsServiceRequest{}, 0, 0
	}
	flush()
	for _, rl := range req.GetResourceLogs() {
		rlHeader := &logspb.ResourceLogs{Resource: rl.GetResource(), SchemaUrl: rl.GetSchemaUrl()}
		rlCost := groupOverhead(rlHeader)
		var curRL *logspb.ResourceLogs
		for _, sl := range rl.GetScopeLogs() {
			slHeader := &logspb.ScopeLogs{Scope: sl.GetScope(), SchemaUrl: sl.GetSchemaUrl()}
			slCost := groupOverhead(slHeader)
			var curSL *logspb.ScopeLogs
			for _, rec := range sl.GetLogRecords() {
				cost := fieldSize(proto.Size(rec))
				extra := 0
				if curSL == nil {
					extra += slCost
					if curRL == nil {
						extra += rlCost
					}
				}
				if records > 0 && size+extra+cost > limit {
					flush()
					curRL, curSL = nil, nil
					extra = rlCost + slCost
				}
				if curRL == nil {
					curRL = &logspb.ResourceLogs{Resource: rl.GetResource(), SchemaUrl: rl.GetSchemaUrl()}
					cur.ResourceLogs = append(cur.ResourceLogs, curRL)
				}
				if curSL == nil {
					curSL = &logspb.ScopeLogs{Scope: sl.GetScope(), SchemaUrl: sl.GetSchemaUrl()}
					curRL.ScopeLogs = append(curRL.ScopeLogs, curSL)
				}
				curSL.LogRecords = append(curSL.LogRecords, rec)
				size += extra + cost
				records++
			}
		}
	}
	flush()
	return out
}

// splitTraces is splitLogs for spans.
func splitTraces(req *coltracepb.ExportTraceServiceRequest, limit int) []*coltracepb.ExportTraceServiceRequest {
	var out []*coltracepb.ExportTraceServiceRequest
	var cur *coltracepb.ExportTraceServiceRequest
	size, spans := 0, 0
	flush := func() {
		if cur != nil && spans > 0 {
			out = append(out, cur)
		}
		cur, size, spans = &coltracepb.ExportTraceServiceRequest{}, 0, 0
	}
	flush()
	for _, rs := range req.GetResourceSpans() {
		rsHeader := &tracepb.ResourceSpans{Resource: rs.GetResource(), SchemaUrl: rs.GetSchemaUrl()}
		rsCost := groupOverhead(rsHeader)
		var curRS *tracepb.ResourceSpans
		for _, ss := range rs.GetScopeSpans() {
			ssHeader := &tracepb.ScopeSpans{Scope: ss.GetScope(), SchemaUrl: ss.GetSchemaUrl()}
			ssCost := groupOverhead(ssHeader)
			var curSS *tracepb.ScopeSpans
			for _, sp := range ss.GetSpans() {
				cost := fieldSize(proto.Size(sp))
				extra := 0
				if curSS == nil {
					extra += ssCost
					if curRS == nil {
						extra += rsCost
					}
				}
				if spans > 0 && size+extra+cost > limit {
					flush()
					curRS, curSS = nil, nil
					extra = rsCost + ssCost
				}
				if curRS == nil {
					curRS = &tracepb.ResourceSpans{Resource: rs.GetResource(), SchemaUrl: rs.GetSchemaUrl()}
					cur.ResourceSpans = append(cur.ResourceSpans, curRS)
				}
				if curSS == nil {
					curSS = &tracepb.ScopeSpans{Scope: ss.GetScope(), SchemaUrl: ss.GetSchemaUrl()}
					curRS.ScopeSpans = append(curRS.ScopeSpans, curSS)
				}
				curSS.Spans = append(curSS.Spans, sp)
				size += extra + cost
				spans++
			}
		}
	}
	flush()
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
