package forwarder

// Fault tests (issue 8): a downstream that goes away, is slow or flaps, and bad or
// unauthenticated traffic mixed into good traffic. Each test drives a steady load of
// complete spans through a real forwarder over loopback, retrying refusals as a
// well-behaved sender does, and prints its figures: spans sent, acknowledged,
// delivered and dropped (acknowledged but never delivered, which must be zero).

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/faultproxy"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
	"github.com/stwbridge/stwbridge/otlpexport"
	"go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// loadGen sends complete spans (SpanOpen and SpanEndData in one request) on one stream,
// retrying each request until it is acknowledged.
type loadGen struct {
	client collogspb.LogsServiceClient
	md     metadata.MD // sent with every request (authorization)
	tag    byte        // distinguishes the spans of one generator
	stream bridge.StreamID

	mu      sync.Mutex
	next    uint32 // spans so far
	seq     uint64
	acked   map[trace.SpanID]bool
	refused int // refusals and transport errors, each retried
	gaveUp  int // spans of requests never acknowledged
}

func newLoad(conn *grpc.ClientConn, tag byte, md metadata.MD) *loadGen {
	return &loadGen{client: collogspb.NewLogsServiceClient(conn), md: md, tag: tag,
		stream: bridge.StreamID{0xfa, 15: tag}, acked: map[trace.SpanID]bool{}}
}

var faultTrace = trace.TraceID{0xfa, 0x17, 15: 1}

// send sends n complete spans in one request and retries it until acknowledged or
// giveUp passes.
func (l *loadGen) send(n int, giveUp time.Duration) {
	l.mu.Lock()
	now := time.Now()
	events := make([]bridge.Event, 0, 2*n)
	ids := make([]trace.SpanID, n)
	for i := range n {
		var id trace.SpanID
		id[0] = l.tag
		binary.BigEndian.PutUint32(id[4:], l.next+1)
		l.next++
		ids[i] = id
		events = append(events,
			bridge.Event{TraceID: faultTrace, SpanID: id, StreamID: l.stream, Sequence: l.seq, Time: now,
				Resource: res, Body: &bridge.SpanOpen{Name: fmt.Sprintf("load-%d-%d", l.tag, l.next)}},
			bridge.Event{TraceID: faultTrace, SpanID: id, StreamID: l.stream, Sequence: l.seq + 1, Time: now.Add(time.Millisecond),
				Resource: res, Body: &bridge.SpanEndData{}})
		l.seq += 2
	}
	l.mu.Unlock()
	req := otlpexport.EncodeEvents(events)
	deadline := time.Now().Add(giveUp)
	for {
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), l.md), 5*time.Second)
		_, err := l.client.Export(ctx, req)
		cancel()
		if err == nil {
			l.mu.Lock()
			for _, id := range ids {
				l.acked[id] = true
			}
			l.mu.Unlock()
			return
		}
		l.mu.Lock()
		l.refused++
		l.mu.Unlock()
		if time.Now().After(deadline) {
			l.mu.Lock()
			l.gaveUp += n
			l.mu.Unlock()
			return
		}
		time.Sleep(retryDelay(err))
	}
}

// retryDelay is the RetryInfo delay of a refusal, else a short pause.
func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return min(ri.GetRetryDelay().AsDuration(), time.Second)
		}
	}
	return 50 * time.Millisecond
}

// run sends a request of n spans every interval until stop is closed.
func (l *loadGen) run(n int, interval time.Duration, stop <-chan struct{}) *sync.WaitGroup {
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
				l.send(n, time.Minute)
			}
		}
	}()
	return &wg
}

// figures reports sent, acknowledged, delivered (acknowledged spans at the sink) and
// dropped (acknowledged, not delivered).
type figures struct{ sent, acked, delivered, dropped, refusals int }

func (l *loadGen) figures(s *otlpsink.Sink) figures {
	have := map[trace.SpanID]bool{}
	for _, sp := range s.Spans() {
		if len(sp.SpanId) == 8 {
			have[trace.SpanID(sp.SpanId)] = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := figures{sent: int(l.next), acked: len(l.acked), refusals: l.refused}
	for id := range l.acked {
		if have[id] {
			f.delivered++
		}
	}
	f.dropped = f.acked - f.delivered
	return f
}

// waitDelivered waits until every acknowledged span is at the sink, then prints and
// checks the figures.
func waitDelivered(t *testing.T, name string, s *otlpsink.Sink, within time.Duration, loads ...*loadGen) {
	t.Helper()
	total := func() figures {
		var sum figures
		for _, l := range loads {
			f := l.figures(s)
			sum.sent += f.sent
			sum.acked += f.acked
			sum.delivered += f.delivered
			sum.dropped += f.dropped
			sum.refusals += f.refusals
		}
		return sum
	}
	s.WaitFor(within, func(*otlpsink.Sink) bool { f := total(); return f.dropped == 0 })
	f := total()
	t.Logf("FIGURES %s: spans sent %d, acknowledged %d, delivered %d, dropped %d (sender retries after refusals: %d)",
		name, f.sent, f.acked, f.delivered, f.dropped, f.refusals)
	if f.dropped != 0 {
		t.Fatalf("%s: %d acknowledged spans never delivered", name, f.dropped)
	}
	if f.acked == 0 || f.acked != f.sent {
		t.Fatalf("%s: %d of %d spans acknowledged: the sender gave up on some", name, f.acked, f.sent)
	}
}

// faultForwarder runs a forwarder with a persistent queue, exporting through a fault
// proxy to a sink, with retries long enough to outlast the faults.
func faultForwarder(t *testing.T, edit func(*config.Config)) (*running, *faultproxy.Proxy, *otlpsink.Sink) {
	t.Helper()
	sink := startSink(t)
	proxy, err := faultproxy.New(sink.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	r := start(t, func(c *config.Config) {
		c.Exporter.Endpoint = "http://" + proxy.Addr()
		c.Exporter.RetryOnFailure = config.RetryOnFailure{Enabled: true,
			InitialInterval: config.Duration(100 * time.Millisecond), MaxInterval: config.Duration(time.Second),
			MaxElapsedTime: config.Duration(5 * time.Minute)}
		c.Exporter.SendingQueue.QueueSize = 8192
		c.Exporter.Timeout = config.Duration(2 * time.Second)
		c.Persistence.DataDir = t.TempDir()
		c.Persistence.CheckpointInterval = config.Duration(300 * time.Millisecond)
		if edit != nil {
			edit(c)
		}
	})
	return r, proxy, sink
}

// outage is how long the downstream stays down in TestFaultDownstreamDown: 10s in
// `make test` (the 30s with STWBRIDGE_FAULT_OUTAGE=30s).
func outage(t *testing.T) time.Duration {
	if v := os.Getenv("STWBRIDGE_FAULT_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("STWBRIDGE_FAULT_OUTAGE=%q: %v", v, err)
		}
		return d
	}
	return 10 * time.Second
}

// TestFaultDownstreamDown: under steady load (200 spans/s), the downstream goes away
// for the outage, then comes back: every acknowledged span is delivered.
func TestFaultDownstreamDown(t *testing.T) {
	r, proxy, sink := faultForwarder(t, nil)
	load := newLoad(r.conn, 1, nil)
	stop := make(chan struct{})
	wg := load.run(10, 50*time.Millisecond, stop)
	waitFor(t, 10*time.Second, "first spans delivered", func() bool { return load.figures(sink).delivered > 0 })
	down := outage(t)
	proxy.Down()
	before := load.figures(sink).delivered
	time.Sleep(down) // the outage itself: the load keeps running
	during := load.figures(sink).delivered - before
	proxy.Up()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	waitDelivered(t, fmt.Sprintf("downstream down %v", down), sink, 2*time.Minute, load)
	if during > 0 {
		t.Logf("(%d spans were in flight when the link went down)", during)
	}
	st := r.f.exporter.Stats()
	t.Logf("exporter: retries %d, failed %d, dropped %d; persistent queue: %+v", st.Retries,
		st.Traces.Failed, st.Traces.Dropped, r.f.guards.queue.Stats())
	if st.Retries == 0 {
		t.Fatal("no export was retried: the outage did not happen")
	}
}

// TestFaultDownstreamSlowAndFlapping: first the downstream link delays every chunk,
// then it flaps (down 300ms, up 500ms); the load goes on throughout.
func TestFaultDownstreamSlowAndFlapping(t *testing.T) {
	r, proxy, sink := faultForwarder(t, nil)
	load := newLoad(r.conn, 2, nil)
	stop := make(chan struct{})
	wg := load.run(10, 50*time.Millisecond, stop)
	proxy.SetDelay(30 * time.Millisecond)
	time.Sleep(3 * time.Second)
	proxy.SetDelay(0)
	stopFlap := make(chan struct{})
	flapped := proxy.Flap(500*time.Millisecond, 300*time.Millisecond, stopFlap)
	time.Sleep(4 * time.Second)
	close(stopFlap)
	<-flapped
	close(stop)
	wg.Wait()
	waitDelivered(t, "downstream slow 3s then flapping 4s", sink, 2*time.Minute, load)
	ps := proxy.Stats()
	t.Logf("proxy: connections %d, reset while down %d, cut %d", ps.Accepted, ps.Refused, ps.Cut)
	if ps.Cut+ps.Refused == 0 {
		t.Fatal("the link never went down while flapping")
	}
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
