// Package faultload drives fault tests: a steady load of spans sent to a forwarder as
// STW lifecycle events over OTLP/gRPC, each request retried until it is acknowledged
// (honouring RetryInfo, as a well-behaved sender does), and the figures that say what
// happened: spans sent, acknowledged, delivered downstream, and dropped (acknowledged
// but never delivered).
package faultload

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/stwotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// GiveUp is how long one request is retried before the sender gives up on it.
const GiveUp = time.Minute

var (
	traceID = trace.TraceID{0xfa, 0x17, 15: 1}
	res     = resource.NewSchemaless(attribute.String("service.name", "faultload"))
)

// Load sends spans on one stream. It is safe for concurrent use.
type Load struct {
	client collogspb.LogsServiceClient
	md     metadata.MD
	tag    byte
	stream bridge.StreamID

	mu      sync.Mutex
	next    uint32
	seq     uint64
	opened  map[trace.SpanID]bool // open acknowledged, end not yet
	acked   map[trace.SpanID]bool // open and end acknowledged
	refused int
	gaveUp  int
}

// New returns a load over conn; tag tells its spans from other loads'; md is sent with
// every request (an authorization header, say).
func New(conn grpc.ClientConnInterface, tag byte, md metadata.MD) *Load {
	return &Load{client: collogspb.NewLogsServiceClient(conn), md: md, tag: tag,
		stream: bridge.StreamID{0xfa, 15: tag}, opened: map[trace.SpanID]bool{}, acked: map[trace.SpanID]bool{}}
}

func (l *Load) event(id trace.SpanID, at time.Time, body bridge.Body) bridge.Event {
	e := bridge.Event{TraceID: traceID, SpanID: id, StreamID: l.stream, Sequence: l.seq, Time: at, Resource: res, Body: body}
	l.seq++
	return e
}

func (l *Load) newIDs(n int) []trace.SpanID {
	ids := make([]trace.SpanID, n)
	for i := range ids {
		l.next++
		ids[i][0] = l.tag
		binary.BigEndian.PutUint32(ids[i][4:], l.next)
	}
	return ids
}

// Send sends n complete spans (SpanOpen and SpanEndData) in one request.
func (l *Load) Send(n int) {
	l.mu.Lock()
	now := time.Now()
	ids := l.newIDs(n)
	events := make([]bridge.Event, 0, 2*n)
	for _, id := range ids {
		events = append(events, l.event(id, now, &bridge.SpanOpen{Name: Name(id)}),
			l.event(id, now.Add(time.Millisecond), &bridge.SpanEndData{}))
	}
	l.mu.Unlock()
	if l.export(events) {
		l.mark(l.acked, ids)
	} else {
		l.giveUp(len(ids))
	}
}

// Open opens n spans and returns them once acknowledged; End ends them later.
func (l *Load) Open(n int) []trace.SpanID {
	l.mu.Lock()
	ids := l.newIDs(n)
	events := make([]bridge.Event, 0, n)
	for _, id := range ids {
		events = append(events, l.event(id, time.Now(), &bridge.SpanOpen{Name: Name(id)}))
	}
	l.mu.Unlock()
	if l.export(events) {
		l.mark(l.opened, ids)
	} else {
		l.giveUp(len(ids))
	}
	return ids
}

// End ends spans returned by Open.
func (l *Load) End(ids []trace.SpanID) {
	l.mu.Lock()
	events := make([]bridge.Event, 0, len(ids))
	for _, id := range ids {
		events = append(events, l.event(id, time.Now(), &bridge.SpanEndData{}))
	}
	l.mu.Unlock()
	if l.export(events) {
		l.mu.Lock()
		for _, id := range ids {
			if l.opened[id] {
				delete(l.opened, id)
				l.acked[id] = true
			}
		}
		l.mu.Unlock()
	} else {
		l.giveUp(len(ids))
	}
}

func (l *Load) mark(m map[trace.SpanID]bool, ids []trace.SpanID) {
	l.mu.Lock()
	for _, id := range ids {
		m[id] = true
	}
	l.mu.Unlock()
}

func (l *Load) giveUp(n int) {
	l.mu.Lock()
	l.gaveUp += n
	l.mu.Unlock()
}

// Name is the span name Load gives span id.
func Name(id trace.SpanID) string {
	return fmt.Sprintf("load-%d-%d", id[0], binary.BigEndian.Uint32(id[4:]))
}

// export sends one request, retrying it until acknowledged or GiveUp passes.
func (l *Load) export(events []bridge.Event) bool {
	req := stwotlp.EventsRequest(events)
	deadline := time.Now().Add(GiveUp)
	for {
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), l.md), 5*time.Second)
		_, err := l.client.Export(ctx, req)
		cancel()
		if err == nil {
			return true
		}
		l.mu.Lock()
		l.refused++
		l.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(RetryDelay(err))
	}
}

// RetryDelay is the RetryInfo delay of a refusal (at most 1s), else 50ms.
func RetryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return min(ri.GetRetryDelay().AsDuration(), time.Second)
		}
	}
	return 50 * time.Millisecond
}

// Run sends a request of n complete spans every interval until stop is closed; Wait on
// the group it returns.
func (l *Load) Run(n int, interval time.Duration, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				l.Send(n)
			}
		}
	}()
	return &wg
}

// Figures say what happened to a load's spans.
type Figures struct {
	Sent      int // spans sent
	Acked     int // spans whose open and end were acknowledged
	Delivered int // acknowledged spans the sink received (complete, not unfinished)
	Dropped   int // acknowledged spans the sink did not receive complete
	Unended   int // spans opened and acknowledged but never ended by the load
	Retries   int // requests refused (or failed) and retried
}

func (f Figures) String() string {
	return fmt.Sprintf("spans sent %d, acknowledged %d, delivered %d, dropped %d (sender retries after refusals or errors: %d)",
		f.Sent, f.Acked, f.Delivered, f.Dropped, f.Retries)
}

// Figures counts against what s received. A span counts as delivered when it arrived
// complete (an unfinished copy does not count).
func (l *Load) Figures(s *otlpsink.Sink) Figures {
	have := map[trace.SpanID]bool{}
	for _, sp := range s.Spans() {
		if len(sp.SpanId) == 8 && !unfinished(sp.GetAttributes()) {
			have[trace.SpanID(sp.SpanId)] = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := Figures{Sent: int(l.next), Acked: len(l.acked), Unended: len(l.opened), Retries: l.refused}
	for id := range l.acked {
		if have[id] {
			f.Delivered++
		}
	}
	f.Dropped = f.Acked - f.Delivered
	return f
}

func unfinished(attrs []*commonpb.KeyValue) bool {
	for _, kv := range attrs {
		if kv.Key == stwotlp.AttrUnfinished && kv.Value.GetBoolValue() {
			return true
		}
	}
	return false
}

// Wait waits until every acknowledged span of the loads is at s, logs the figures
// under name, and fails t if any was dropped or never acknowledged.
func Wait(t testing.TB, name string, s *otlpsink.Sink, within time.Duration, loads ...*Load) Figures {
	t.Helper()
	total := func() Figures {
		var sum Figures
		for _, l := range loads {
			f := l.Figures(s)
			sum.Sent += f.Sent
			sum.Acked += f.Acked
			sum.Delivered += f.Delivered
			sum.Dropped += f.Dropped
			sum.Unended += f.Unended
			sum.Retries += f.Retries
		}
		return sum
	}
	s.WaitFor(within, func(*otlpsink.Sink) bool { return total().Dropped == 0 })
	f := total()
	t.Logf("FIGURES %s: %s", name, f)
	if f.Dropped != 0 {
		t.Fatalf("%s: %d acknowledged spans never delivered complete", name, f.Dropped)
	}
	if f.Acked == 0 || f.Acked+f.Unended != f.Sent {
		t.Fatalf("%s: %d of %d spans acknowledged: the sender gave up on some", name, f.Acked+f.Unended, f.Sent)
	}
	return f
}
