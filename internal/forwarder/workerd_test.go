package forwarder

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// A workerd invocation's spans, its unfinished root and the lifecycle records
// --forward-events makes of its events all arrive under the invocation's Resource,
// named as workerd.service_name_prefix says.
func TestWorkerdInvocationResource(t *testing.T) {
	sink := startSink(t)
	r := start(t, func(c *config.Config) {
		c.Exporter.Endpoint = "http://" + sink.Addr()
		c.ForwardEvents = true
		c.Workerd.ServiceNamePrefix = "cf-"
	})
	const envl = `{"spanContext":{"traceId":"983a4641c7fed86130cb5bf175732ce5"%s},"invocationId":"36ea23f65aa0585be81336c1f2b06c87","timestamp":"2026-11-23T18:31:08.884Z","sequence":%d,"event":%s}`
	body := strings.Join([]string{
		fmt.Sprintf(envl, ``, 0, `{"type":"onset","executionModel":"stateless","spanId":"00000000000000a1","scriptName":"api","info":{"type":"fetch","method":"GET","url":"http://x/","headers":[]}}`),
		fmt.Sprintf(envl, `,"spanId":"00000000000000a1"`, 1, `{"type":"spanOpen","name":"child","spanId":"00000000000000b2"}`),
		fmt.Sprintf(envl, `,"spanId":"00000000000000b2"`, 2, `{"type":"spanClose","outcome":"ok"}`),
	}, "\n")
	res, err := http.Post("http://"+r.f.HTTPAddr()+"/v1/stw", "application/x-ndjson", strings.NewReader(body))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/stw: %v %v", res, err)
	}
	res.Body.Close()
	if !sink.WaitFor(5*time.Second, func(s *otlpsink.Sink) bool { return spanNamed(s, "child") != nil && len(s.LogRecords()) == 3 }) {
		t.Fatalf("sink got spans %v, records %v", sink.Spans(), sink.LogRecords())
	}
	if err := r.stop(t); err != nil { // the root, still open, goes out unfinished
		t.Fatal(err)
	}
	if sp := spanNamed(sink, "GET"); sp == nil || !boolAttr(sp, "stw.unfinished") {
		t.Fatalf("no unfinished root: %v", sp)
	}
	check := func(what string, r *resourcepb.Resource, n int) {
		got := map[string]string{}
		for _, kv := range r.GetAttributes() {
			got[kv.Key] = kv.Value.GetStringValue()
		}
		if got["service.name"] != "cf-api" || got["faas.name"] != "api" || got["cloud.provider"] != "cloudflare" {
			t.Errorf("%d %s under resource %v", n, what, got)
		}
	}
	for _, req := range sink.TraceRequests() {
		for _, rs := range req.ResourceSpans {
			check("spans", rs.Resource, len(rs.ScopeSpans))
		}
	}
	for _, req := range sink.LogRequests() {
		for _, rl := range req.ResourceLogs {
			check("records", rl.Resource, len(rl.ScopeLogs))
		}
	}
}
