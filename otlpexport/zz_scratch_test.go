package otlpexport_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/processor"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

type srvTimer struct {
	mu    sync.Mutex
	begin map[context.Context]time.Time
	tot   time.Duration
	recv  time.Duration
}

type ctxKey struct{}

func (s *srvTimer) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, ctxKey{}, &time.Time{})
}
func (s *srvTimer) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (s *srvTimer) HandleConn(context.Context, stats.ConnStats)                       {}
func (s *srvTimer) HandleRPC(ctx context.Context, st stats.RPCStats) {
	p := ctx.Value(ctxKey{}).(*time.Time)
	switch x := st.(type) {
	case *stats.Begin:
		*p = x.BeginTime
	case *stats.InPayload:
		s.mu.Lock()
		s.recv += x.RecvTime.Sub(*p)
		s.mu.Unlock()
	case *stats.End:
		s.mu.Lock()
		s.tot += x.EndTime.Sub(*p)
		s.mu.Unlock()
	}
}

func TestZZScratch(t *testing.T) {
	for _, mode := range []otlpexport.Mode{otlpexport.ModeEvents} {
		st := &srvTimer{}
		sink := exSink(t, grpc.StatsHandler(st))
		var mu sync.Mutex
		var inv time.Duration
		ic := grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			t0 := time.Now()
			err := invoker(ctx, method, req, reply, cc, opts...)
			mu.Lock()
			inv += time.Since(t0)
			mu.Unlock()
			return err
		})
		exp, _ := otlpexport.New(context.Background(), otlpexport.WithEndpoint(sink.Addr()), otlpexport.WithInsecure(), otlpexport.WithMode(mode), otlpexport.WithDialOptions(ic))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(processor.New(exp)))
		attrs := make([]attribute.KeyValue, 10)
		for i := range attrs {
			attrs[i] = attribute.String("attr."+string(rune('a'+i)), strings.Repeat("x", 20))
		}
		tr := tp.Tracer("x")
		var mk, fl, maxfl time.Duration
		for c := 0; c < 20; c++ {
			t0 := time.Now()
			for range 1000 {
				_, s := tr.Start(context.Background(), "op", trace.WithAttributes(attrs...))
				s.End()
			}
			t1 := time.Now()
			tp.ForceFlush(context.Background())
			t2 := time.Now()
			mk += t1.Sub(t0)
			fl += t2.Sub(t1)
			maxfl = max(maxfl, t2.Sub(t1))
		}
		s := exp.Stats()
		fmt.Println(mode, "make", mk, "flush", fl, "max flush", maxfl, "log reqs", s.Logs.Requests, "invoke total", inv, "server total", st.tot, "server recv", st.recv)
	}
}
