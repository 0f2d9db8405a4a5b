package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

// generator makes realistic traces: an HTTP server span with a few children (a
// database query, an outgoing call, a render), each trace its own stream, as one
// request of an instrumented service.
type generator struct {
	rng      *rand.Rand
	res      *resource.Resource
	scope    *instrumentation.Scope
	spansPer int
	spec     bool // the OpenTelemetry benchmark's span (specAttrs) instead of a web request
	next     uint64
}

// specAttrs are the attributes of the span of the OpenTelemetry SDK benchmarks (and
// of otlpexport's BenchmarkThroughput): 10 strings of 20 characters.
var specAttrs = func() []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 10)
	for i := range attrs {
		c := string(rune('a' + i))
		attrs[i] = attribute.String("attr."+c, strings.Repeat(c, 20))
	}
	return attrs
}()

// request is one trace: its lifecycle events split into the opens (sent at once) and
// the ends (sent one tick later), the same spans as protocol 1.1 stw.span events (as
// the processor sends spans that end within its announce delay), and complete.
type request struct {
	opens, ends []bridge.Event
	completes   []bridge.Event
	spans       []bridge.Span
}

// newGenerator makes traces of spansPerTrace spans (a server span and its children),
// or, with spec, traces of one span: the OpenTelemetry benchmark's.
func newGenerator(seed uint64, spansPerTrace int, spec bool) *generator {
	if spec {
		spansPerTrace = 1
	}
	return &generator{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		res: resource.NewSchemaless(
			attribute.String("service.name", "checkout"),
			attribute.String("service.version", "1.42.0"),
			attribute.String("deployment.environment.name", "production"),
			attribute.String("host.name", "checkout-7f9c6d5b8-x2x4z"),
			attribute.String("telemetry.sdk.language", "go"),
		),
		scope:    &instrumentation.Scope{Name: "github.com/stwbridge/stwbridge/cmd/stwload", Version: "1"},
		spansPer: max(spansPerTrace, 1),
		spec:     spec,
		next:     seed << 40,
	}
}

var routes = []string{"/checkout/{id}", "/cart", "/orders/{id}", "/users/{id}/profile", "/search"}

// request makes one trace starting at start, whose spans last about dur.
func (g *generator) request(start time.Time, dur time.Duration) request {
	g.next++
	var tid trace.TraceID
	binary.BigEndian.PutUint64(tid[:8], g.rng.Uint64())
	binary.BigEndian.PutUint64(tid[8:], g.next)
	var sid bridge.StreamID
	binary.BigEndian.PutUint64(sid[:8], g.rng.Uint64()|1)
	binary.BigEndian.PutUint64(sid[8:], g.next)
	route := routes[g.rng.IntN(len(routes))]
	status := 200
	if g.rng.IntN(50) == 0 {
		status = 500
	}

	var r request
	seq := uint64(0)
	ids := make([]trace.SpanID, g.spansPer)
	for i := range ids {
		binary.BigEndian.PutUint64(ids[i][:], g.rng.Uint64()|1)
	}
	for i := 0; i < g.spansPer; i++ {
		var parent trace.SpanID
		kind := trace.SpanKindServer
		name := "GET " + route
		attrs := []attribute.KeyValue{
			attribute.String("http.request.method", "GET"),
			attribute.String("http.route", route),
			attribute.String("url.path", fmt.Sprintf("/checkout/%d", g.next%100000)),
			attribute.String("url.scheme", "https"),
			attribute.String("server.address", "shop.example.com"),
			attribute.String("client.address", "203.0.113.17"),
			attribute.String("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"),
			attribute.String("network.protocol.version", "1.1"),
		}
		if i > 0 {
			parent = ids[0]
			switch i % 3 {
			case 1:
				kind, name = trace.SpanKindClient, "SELECT orders"
				attrs = []attribute.KeyValue{
					attribute.String("db.system.name", "postgresql"),
					attribute.String("db.namespace", "shop"),
					attribute.String("db.operation.name", "SELECT"),
					attribute.String("db.query.text", "SELECT id, total, status FROM orders WHERE user_id = $1 LIMIT 20"),
					attribute.String("server.address", "db.internal"),
					attribute.Int("server.port", 5432),
				}
			case 2:
				kind, name = trace.SpanKindClient, "POST"
				attrs = []attribute.KeyValue{
					attribute.String("http.request.method", "POST"),
					attribute.String("url.full", "https://payments.internal/v2/charges"),
					attribute.String("server.address", "payments.internal"),
					attribute.Int("server.port", 443),
				}
			default:
				kind, name = trace.SpanKindInternal, "render template"
				attrs = []attribute.KeyValue{attribute.String("template.name", "checkout.html"), attribute.Int("template.bytes", 18342)}
			}
		}
		if g.spec {
			kind, name, attrs = trace.SpanKindInternal, "operation", specAttrs
		}
		open := bridge.Event{TraceID: tid, SpanID: ids[i], StreamID: sid, Sequence: seq, Time: start,
			Resource: g.res, Scope: g.scope,
			Body: &bridge.SpanOpen{Name: name, SpanKind: kind, Parent: parent, TraceFlags: trace.FlagsSampled, Attributes: attrs}}
		seq++
		r.opens = append(r.opens, open)

		end := start.Add(dur)
		st := bridge.Status{}
		endAttrs := []attribute.KeyValue{}
		if i == 0 && !g.spec {
			endAttrs = append(endAttrs, attribute.Int("http.response.status_code", status))
			if status >= 500 {
				st = bridge.Status{Code: codes.Error, Description: "internal error"}
			}
		}
		r.ends = append(r.ends, bridge.Event{TraceID: tid, SpanID: ids[i], StreamID: sid, Time: end,
			Resource: g.res, Scope: g.scope,
			Body: &bridge.SpanEndData{Status: st, Attributes: endAttrs}})
		r.spans = append(r.spans, bridge.Span{TraceID: tid, SpanID: ids[i], Parent: parent, TraceFlags: trace.FlagsSampled,
			Name: name, SpanKind: kind, Start: start, End: end, Attributes: append(append([]attribute.KeyValue{}, attrs...), endAttrs...),
			Status: st, Resource: g.res, Scope: g.scope, StreamID: sid})
	}
	for i := range r.ends {
		r.ends[i].Sequence = seq
		seq++
	}
	// As the processor sends them: the children as they end, then the root, which ends
	// the stream; a root without children is alone in its stream.
	for k := range r.opens {
		i := (k + 1) % len(r.opens)
		c := r.ends[i]
		body := &bridge.CompleteSpan{Start: r.opens[i].Time, Open: r.opens[i].Body.(*bridge.SpanOpen), End: r.ends[i].Body.(*bridge.SpanEndData)}
		c.Sequence, c.Body = uint64(k), body
		if len(r.opens) == 1 {
			body.Alone, c.StreamID = true, bridge.AloneStreamID(c.TraceID, c.SpanID)
		}
		r.completes = append(r.completes, c)
	}
	return r
}
