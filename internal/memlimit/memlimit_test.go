package memlimit

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// Options only tests set.
func withLimitBytes(n uint64) Option           { return func(o *Options) { o.LimitBytes = n } }
func withMinGCInterval(d time.Duration) Option { return func(o *Options) { o.minGCInterval = d } }
func withReadMemory(f func() uint64) Option    { return func(o *Options) { o.readMemory = f } }

func quiet() Option { return WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) }

type fakeMem struct{ v atomic.Uint64 }

func (f *fakeMem) read() uint64 { return f.v.Load() }

func newFake(t *testing.T, limit uint64, opts ...Option) (*Limiter, *fakeMem) {
	t.Helper()
	f := &fakeMem{}
	l, err := New(append([]Option{quiet(), withLimitBytes(limit), withReadMemory(f.read), withMinGCInterval(time.Hour)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l, f
}

type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

// serveGRPC starts a real gRPC server with the limiter's interceptors, the interop test
// service and the health service, returning a client connection.
func serveGRPC(t *testing.T, l *Limiter) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(l.UnaryServerInterceptor()), grpc.StreamInterceptor(l.StreamServerInterceptor()))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	testgrpc.RegisterTestServiceServer(srv, testService{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestGRPCRefusesAboveLimitWithRetryInfo(t *testing.T) {
	l, mem := newFake(t, 1000, WithRetryAfter(1500*time.Millisecond))
	cc := serveGRPC(t, l)
	c := testgrpc.NewTestServiceClient(cc)
	ctx := context.Background()
	mem.v.Store(500)
	l.Check()
	if _, err := c.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatalf("below the limit: %v", err)
	}
	mem.v.Store(2000)
	l.Check()
	_, err := c.EmptyCall(ctx, &testgrpc.Empty{})
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("above the limit: %v, want Unavailable", err)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != 1500*time.Millisecond {
		t.Fatalf("RetryInfo delay %v, want 1.5s (details %v)", delay, st.Details())
	}
	// Streams are refused too.
	s, err := c.FullDuplexCall(ctx)
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("stream above the limit: %v", err)
	}
	// Health checks are not.
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check above the limit: %v", err)
	}
	if l.Refused() != 2 {
		t.Fatalf("Refused %d, want 2", l.Refused())
	}
	mem.v.Store(999)
	l.Check()
	if _, err := c.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatalf("back below the limit: %v", err)
	}
	if l.Used() != 999 || l.Limit() != 1000 {
		t.Fatalf("Used %d Limit %d", l.Used(), l.Limit())
	}
}

func TestHTTPMiddleware(t *testing.T) {
	l, mem := newFake(t, 1000, WithRetryAfter(2500*time.Millisecond))
	srv := httptest.NewServer(l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv.Close()
	get := func() *http.Response {
		resp, err := http.Post(srv.URL, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get(); r.StatusCode != http.StatusNoContent {
		t.Fatalf("below: %d", r.StatusCode)
	}
	mem.v.Store(1001)
	l.Check()
	r := get()
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "3" {
		t.Fatalf("above: %d Retry-After %q, want 503 and 3", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if l.Refused() != 1 {
		t.Fatalf("Refused %d", l.Refused())
	}
}

func TestStartSamplesAtInterval(t *testing.T) {
	l, mem := newFake(t, 1000, WithCheckInterval(5*time.Millisecond))
	l.Start()
	defer l.Stop()
	mem.v.Store(5000)
	waitFor(t, l.Over, "limiter to notice memory above the limit")
	mem.v.Store(10)
	waitFor(t, func() bool { return !l.Over() }, "limiter to notice memory below the limit")
	l.Stop() // twice is fine
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestLimitOptions(t *testing.T) {
	if _, err := New(quiet()); err == nil {
		t.Fatal("no limit: no error")
	}
	if _, err := New(quiet(), WithLimitPercent(150)); err == nil {
		t.Fatal("150%: no error")
	}
	l, err := New(quiet(), WithLimitPercent(50))
	if err != nil {
		t.Fatal(err)
	}
	total, err := availableMemory()
	if err != nil {
		t.Fatal(err)
	}
	if l.Limit() != total/2 && l.Limit() != uint64(float64(total)*0.5) {
		t.Fatalf("50%% of %d: %d", total, l.Limit())
	}
	l, err = New(quiet(), WithLimitMiB(3))
	if err != nil || l.Limit() != 3<<20 {
		t.Fatalf("3 MiB: %v %d", err, l.Limit())
	}
}

var sink [][]byte

// TestRealAllocationPastLimit allocates 64 MiB past a limit set 32 MiB above the
// current heap: the real reading sees it; once released, a forced GC brings it back.
func TestRealAllocationPastLimit(t *testing.T) {
	runtime.GC()
	base := readHeap()
	l, err := New(quiet(), withLimitBytes(base+32<<20), withMinGCInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	l.Check()
	if l.Over() {
		t.Fatalf("over before allocating: used %d limit %d", l.Used(), l.Limit())
	}
	for i := 0; i < 64; i++ {
		b := make([]byte, 1<<20)
		b[0] = 1
		sink = append(sink, b)
	}
	l.Check()
	if !l.Over() {
		t.Fatalf("not over after allocating 64 MiB: used %d limit %d", l.Used(), l.Limit())
	}
	sink = nil
	l.Check() // forces a GC: the garbage goes, and so does the refusal
	if l.Over() {
		t.Fatalf("still over after release: used %d limit %d", l.Used(), l.Limit())
	}
	if l.ForcedGCs() < 1 {
		t.Fatal("no forced GC")
	}
}

// TestReclaimEndsRefusals: memory held by something reclaimable keeps the limiter over
// its limit while nothing lets it go (a GC alone frees nothing); with Reclaim, one
// check releases it and the refusals end.
func TestReclaimEndsRefusals(t *testing.T) {
	var held [][]byte
	hold := func() {
		for i := 0; i < 64; i++ {
			b := make([]byte, 1<<20)
			b[0] = 1
			held = append(held, b)
		}
	}
	runtime.GC()
	limit := readHeap() + 32<<20
	hold()
	stuck, err := New(quiet(), withLimitBytes(limit), withMinGCInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	stuck.Check()
	stuck.Check()
	if !stuck.Over() {
		t.Fatalf("not over with 64 MiB held: used %d limit %d", stuck.Used(), stuck.Limit())
	}
	l, err := New(quiet(), withLimitBytes(limit), withMinGCInterval(time.Nanosecond), WithReclaim(func() { held = nil }))
	if err != nil {
		t.Fatal(err)
	}
	l.Check()
	if l.Over() || l.Reclaims() != 1 {
		t.Fatalf("still over after reclaiming: used %d limit %d, %d reclaims", l.Used(), l.Limit(), l.Reclaims())
	}
}
