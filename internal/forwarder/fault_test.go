package forwarder

// Fault tests (issue 8): a downstream that goes away, is slow or flaps. Each test
// drives a steady load of complete spans (internal/faultload) through a real forwarder
// over loopback and prints its figures: spans sent, acknowledged, delivered and dropped
// (acknowledged but never delivered, which must be zero). The bad-traffic fault test is
// in guards_test.go; kill -9 and the memory flood run the binary (cmd/stwbridge).

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/faultload"
	"github.com/stwbridge/stwbridge/internal/faultproxy"
	"github.com/stwbridge/stwbridge/internal/otlpsink"
)

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
	load := faultload.New(r.conn, 1, nil)
	stop := make(chan struct{})
	wg := load.Run(10, 50*time.Millisecond, stop)
	waitFor(t, 10*time.Second, "first spans delivered", func() bool { return load.Figures(sink).Delivered > 0 })
	down := outage(t)
	proxy.Down()
	time.Sleep(down) // the outage itself: the load keeps running
	proxy.Up()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	faultload.Wait(t, fmt.Sprintf("downstream down %v under 200 spans/s", down), sink, 2*time.Minute, load)
	st := r.f.exporter.Stats()
	t.Logf("exporter: retries %d, failed %d, dropped %d; persistent queue: %+v", st.Retries,
		st.Traces.Failed, st.Traces.Dropped, r.f.guards.queue.Stats())
	if st.Retries == 0 {
		t.Fatal("no export was retried: the outage did not happen")
	}
	// Once the downstream is back, a checkpoint commits and cuts the queue on disk.
	waitFor(t, time.Minute, "a checkpoint to commit after the outage", func() bool {
		return r.f.guards.queue.Stats().Checkpoints > 0
	})
}

// TestFaultDownstreamSlowAndFlapping: first the downstream link delays every chunk,
// then it flaps (down 300ms, up 500ms); the load goes on throughout.
func TestFaultDownstreamSlowAndFlapping(t *testing.T) {
	r, proxy, sink := faultForwarder(t, nil)
	load := faultload.New(r.conn, 2, nil)
	stop := make(chan struct{})
	wg := load.Run(10, 50*time.Millisecond, stop)
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
	faultload.Wait(t, "downstream slow 3s (30ms a chunk) then flapping 4s", sink, 2*time.Minute, load)
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
