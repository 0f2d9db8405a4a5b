package otlpexport

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func strValue(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

// randomLogs makes a request of several resources and scopes, with records of random
// sizes; each record's body names its resource, scope and index.
func randomLogs(r *rand.Rand) (*collogspb.ExportLogsServiceRequest, []string) {
	req := &collogspb.ExportLogsServiceRequest{}
	var names []string
	for ri := range 1 + r.IntN(3) {
		rl := &logspb.ResourceLogs{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			{Key: "service.name", Value: strValue(fmt.Sprint("svc", ri))}}}, SchemaUrl: "https://schema/" + fmt.Sprint(ri)}
		for si := range 1 + r.IntN(3) {
			sl := &logspb.ScopeLogs{Scope: &commonpb.InstrumentationScope{Name: fmt.Sprintf("scope%d.%d", ri, si)}}
			for i := range r.IntN(40) {
				name := fmt.Sprintf("%d/%d/%d", ri, si, i)
				names = append(names, name)
				sl.LogRecords = append(sl.LogRecords, &logspb.LogRecord{
					EventName: name, Body: strValue(strings.Repeat("x", r.IntN(3000))),
				})
			}
			rl.ScopeLogs = append(rl.ScopeLogs, sl)
		}
		req.ResourceLogs = append(req.ResourceLogs, rl)
	}
	return req, names
}

// TestSplitLogs: every part fits (unless it is one record too big alone), records keep
// their order, resource and scope.
func TestSplitLogs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		req, names := randomLogs(r)
		max := 1024 + r.IntN(20000)
		parts := splitLogs(req, max)
		var got []string
		for pi, p := range parts {
			size, n := proto.Size(p), countLogRecords(p)
			if n == 0 {
				t.Fatalf("round %d: part %d is empty", round, pi)
			}
			if size > max && n != 1 {
				t.Fatalf("round %d: part %d is %d bytes with %d records, limit %d", round, pi, size, n, max)
			}
			for i := 1; i < len(p.ResourceLogs); i++ {
				if proto.Equal(p.ResourceLogs[i].Resource, p.ResourceLogs[i-1].Resource) {
					t.Fatalf("round %d: part %d repeats a resource group", round, pi)
				}
			}
			for _, rl := range p.ResourceLogs {
				for _, sl := range rl.ScopeLogs {
					for _, rec := range sl.LogRecords {
						var ri, si, i int
						fmt.Sscanf(rec.EventName, "%d/%d/%d", &ri, &si, &i)
						if rl.Resource.Attributes[0].Value.GetStringValue() != fmt.Sprint("svc", ri) ||
							rl.SchemaUrl != "https://schema/"+fmt.Sprint(ri) ||
							sl.Scope.Name != fmt.Sprintf("scope%d.%d", ri, si) {
							t.Fatalf("round %d: record %s lost its resource or scope", round, rec.EventName)
						}
						got = append(got, rec.EventName)
					}
				}
			}
		}
		if strings.Join(got, ",") != strings.Join(names, ",") {
			t.Fatalf("round %d: records %v, want %v", round, got, names)
		}
		if proto.Size(req) <= max && len(parts) > 1 {
			t.Fatalf("round %d: a request of %d bytes was split for a limit of %d", round, proto.Size(req), max)
		}
	}
}

func TestSplitTraces(t *testing.T) {
	req := &coltracepb.ExportTraceServiceRequest{}
	for ri := range 3 {
		rs := &tracepb.ResourceSpans{Resource: &resourcepb.Resource{}}
		for si := range 2 {
			ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: fmt.Sprint(ri, si)}}
			for i := range 50 {
				ss.Spans = append(ss.Spans, &tracepb.Span{Name: fmt.Sprintf("%d/%d/%d %s", ri, si, i, strings.Repeat("n", 200))})
			}
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		req.ResourceSpans = append(req.ResourceSpans, rs)
	}
	parts := splitTraces(req, 4096)
	total := 0
	for i, p := range parts {
		if proto.Size(p) > 4096 {
			t.Errorf("part %d is %d bytes", i, proto.Size(p))
		}
		total += countSpans(p)
	}
	if total != 300 || len(parts) < 15 {
		t.Errorf("%d spans in %d parts", total, len(parts))
	}
	if got := parts[0].ResourceSpans[0].ScopeSpans[0].Spans[0].Name[:5]; got != "0/0/0" {
		t.Errorf("first span %s", got)
	}
}
