package stwconnector

import (
	"context"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/collector/internal/stwcodec"
	"github.com/stwbridge/stwbridge/processor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// recording is what the real SDK and processor emitted: one slice of events per
// batch the processor handed on (one OTLP request each).
type recording [][]bridge.Event

// record runs n traces through the OTel SDK with stwbridge's processor: a root, a
// child renamed after its start, and a grandchild; every fourth trace leaves its
// grandchild open (the processor's shutdown reports it unfinished).
func record(t *testing.T, n int) recording {
	t.Helper()
	var (
		mu  sync.Mutex
		rec recording
	)
	tail := bridge.TailFunc(func(_ context.Context, events []bridge.Event) error {
		mu.Lock()
		rec = append(rec, slices.Clone(events))
		mu.Unlock()
		return nil
	})
	p := processor.New(tail, processor.WithFlushInterval(5*time.Millisecond), processor.WithBatchSize(64))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p),
		sdktrace.WithResource(sdkresource.NewSchemaless(attribute.String("service.name", "stw-test"))))
	tr := p.Wrap(sdk).Tracer("stwconnector-test")
	for i := range n {
		ctx, root := tr.Start(context.Background(), fmt.Sprintf("request %d", i))
		cctx, child := tr.Start(ctx, "route pending")
		child.SetName(fmt.Sprintf("GET /items/%d", i))
		_, grand := tr.Start(cctx, "db.query", trace.WithAttributes(attribute.Int("row", i)))
		if i%4 != 3 {
			grand.End()
		}
		child.End()
		root.End()
	}
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return rec
}

// logs turns one batch into the log records the otlp receiver would hand on.
func logs(t testing.TB, events []bridge.Event) plog.Logs {
	t.Helper()
	ld, err := stwcodec.EventsToLogs(events)
	if err != nil {
		t.Fatal(err)
	}
	return ld
}

// instance is one connector with a sink behind it.
type instance struct {
	c    connector.Logs
	sink *consumertest.TracesSink
}

func newInstance(t testing.TB, cfg *Config) *instance {
	t.Helper()
	sink := &consumertest.TracesSink{}
	c, err := NewFactory().CreateLogsToTraces(context.Background(), connectortest.NewNopSettings(Type), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background(), nopHost{}); err != nil {
		t.Fatal(err)
	}
	return &instance{c: c, sink: sink}
}

func (in *instance) consume(t testing.TB, events []bridge.Event) {
	t.Helper()
	if len(events) == 0 {
		return
	}
	if err := in.c.ConsumeLogs(context.Background(), logs(t, events)); err != nil {
		t.Fatal(err)
	}
}

func (in *instance) shutdown(t testing.TB) {
	t.Helper()
	if err := in.c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// nopHost is a host with the given extensions.
type nopHost map[component.ID]component.Component

func (h nopHost) GetExtensions() map[component.ID]component.Component { return h }

// spanRow is what a test compares of an emitted span.
type spanRow struct {
	TraceID, SpanID, Parent string
	Name                    string
	Unfinished              bool
	Start, End              int64
	Attrs                   int
}

func (r spanRow) String() string {
	return fmt.Sprintf("%s/%s %q unfinished=%v", r.TraceID[:8], r.SpanID, r.Name, r.Unfinished)
}

// rows flattens the spans that reached sinks, sorted.
func rows(sinks ...*consumertest.TracesSink) []spanRow {
	var out []spanRow
	for _, s := range sinks {
		for _, td := range s.AllTraces() {
			out = append(out, tracesRows(td)...)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TraceID != out[j].TraceID {
			return out[i].TraceID < out[j].TraceID
		}
		return out[i].SpanID < out[j].SpanID
	})
	return out
}

func tracesRows(td ptrace.Traces) []spanRow {
	var out []spanRow
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				v, _ := sp.Attributes().Get("stw.unfinished")
				out = append(out, spanRow{
					TraceID: sp.TraceID().String(), SpanID: sp.SpanID().String(), Parent: sp.ParentSpanID().String(),
					Name: sp.Name(), Unfinished: v.Bool(),
					Start: int64(sp.StartTimestamp()), End: int64(sp.EndTimestamp()), Attrs: sp.Attributes().Len(),
				})
			}
		}
	}
	return out
}

// ring routes trace ids to members as the loadbalancing exporter documents it: a
// consistent hash ring with many positions per member, the key hashed with crc32, so
// that adding a member moves about 1/N of the traces.
type ring struct {
	pos     []uint32
	members []int
}

const ringPositionsPerMember = 100

func newRing(names ...string) *ring {
	r := &ring{}
	type p struct {
		at uint32
		m  int
	}
	var ps []p
	for m, name := range names {
		for i := range ringPositionsPerMember {
			ps = append(ps, p{crc32.ChecksumIEEE(fmt.Appendf(nil, "%s-%d", name, i)), m})
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].at < ps[j].at })
	for _, x := range ps {
		r.pos = append(r.pos, x.at)
		r.members = append(r.members, x.m)
	}
	return r
}

func (r *ring) member(id trace.TraceID) int {
	h := crc32.ChecksumIEEE(id[:])
	i := sort.Search(len(r.pos), func(i int) bool { return r.pos[i] >= h })
	if i == len(r.pos) {
		i = 0
	}
	return r.members[i]
}

// split divides a batch by member, keeping order.
func (r *ring) split(events []bridge.Event, n int) [][]bridge.Event {
	out := make([][]bridge.Event, n)
	for _, e := range events {
		m := r.member(e.TraceID)
		out[m] = append(out[m], e)
	}
	return out
}

// recordPhased records n traces in two phases, as in a pool change while every trace
// is in flight: first each root and child open (the child renamed), then a late child
// opens and ends under each root and the child and root end.
func recordPhased(t *testing.T, n int) (first, second []bridge.Event) {
	t.Helper()
	var (
		mu     sync.Mutex
		events []bridge.Event
	)
	tail := bridge.TailFunc(func(_ context.Context, batch []bridge.Event) error {
		mu.Lock()
		events = append(events, batch...)
		mu.Unlock()
		return nil
	})
	p := processor.New(tail, processor.WithFlushInterval(5*time.Millisecond))
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := p.Wrap(sdk).Tracer("stwconnector-test")
	type open struct {
		ctx         context.Context
		root, child trace.Span
	}
	opens := make([]open, n)
	for i := range opens {
		ctx, root := tr.Start(context.Background(), fmt.Sprintf("request %d", i))
		_, child := tr.Start(ctx, "route pending")
		child.SetName(fmt.Sprintf("GET /items/%d", i))
		opens[i] = open{ctx, root, child}
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	mark := len(events)
	mu.Unlock()
	for _, o := range opens {
		_, late := tr.Start(o.ctx, "late child")
		late.End()
		o.child.End()
		o.root.End()
	}
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return events[:mark], events[mark:]
}
