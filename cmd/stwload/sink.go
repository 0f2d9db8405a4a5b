package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/stwbridge/stwbridge/internal/wirecodec"
	"github.com/stwbridge/stwbridge/stwotlp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // exporters may compress
)

// counter is the sink: it counts what arrives and keeps the open-visibility latencies.
type counter struct {
	coltracepb.UnimplementedTraceServiceServer

	mu         sync.Mutex
	spans      uint64
	unfinished uint64
	logs       uint64
	opens      uint64
	requests   uint64
	latencies  []time.Duration // span start to its stw.span_open's arrival
}

func (c *counter) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	var n, unfinished uint64
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				n++
				for _, kv := range s.Attributes {
					if kv.Key == stwotlp.AttrUnfinished && kv.Value.GetBoolValue() {
						unfinished++
					}
				}
			}
		}
	}
	c.mu.Lock()
	c.requests++
	c.spans += n
	c.unfinished += unfinished
	c.mu.Unlock()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

type logsService struct {
	collogspb.UnimplementedLogsServiceServer
	c *counter
}

func (l logsService) Export(_ context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	now := time.Now().UnixNano()
	var n uint64
	var lat []time.Duration
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, r := range sl.LogRecords {
				n++
				if r.EventName == stwotlp.EventSpanOpen {
					lat = append(lat, time.Duration(now-int64(r.TimeUnixNano)))
				}
			}
		}
	}
	c := l.c
	c.mu.Lock()
	c.requests++
	c.logs += n
	c.opens += uint64(len(lat))
	c.latencies = append(c.latencies, lat...)
	c.mu.Unlock()
	return &collogspb.ExportLogsServiceResponse{}, nil
}

// discard answers any call (an OTLP export, unary) with an empty message, without
// decoding the request, and counts it.
func (c *counter) discard(_ any, stream grpc.ServerStream) error {
	var req wirecodec.Bytes
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	return stream.SendMsg(wirecodec.Bytes(nil))
}

// line is the sink's report: counts always, latency percentiles when final.
func (c *counter) line(final bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := fmt.Sprintf("spans=%d unfinished=%d logs=%d opens=%d requests=%d", c.spans, c.unfinished, c.logs, c.opens, c.requests)
	if final && len(c.latencies) > 0 {
		l := slices.Clone(c.latencies)
		slices.Sort(l)
		pct := func(p float64) float64 {
			return float64(l[min(len(l)-1, int(p*float64(len(l))))]) / float64(time.Millisecond)
		}
		s += fmt.Sprintf(" p50_ms=%.2f p99_ms=%.2f max_ms=%.2f", pct(0.50), pct(0.99), pct(1))
	}
	return s
}

func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stwload sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "host:port to accept OTLP/gRPC on")
	addrFile := fs.String("addr-file", "", "write the address listened on to this file")
	statsFile := fs.String("stats-file", "", "rewrite the counts into this file every 100ms, and the final report at exit")
	discard := fs.Bool("discard", false, "answer every export without decoding it, counting requests only: the least a gRPC receiver can spend on a load (the benchmarks' floor)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	c := &counter{}
	var srv *grpc.Server
	if *discard {
		srv = grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.ForceServerCodecV2(wirecodec.New()),
			grpc.UnknownServiceHandler(c.discard))
	} else {
		srv = grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
		coltracepb.RegisterTraceServiceServer(srv, c)
		collogspb.RegisterLogsServiceServer(srv, logsService{c: c})
	}
	go func() { _ = srv.Serve(lis) }()
	if *addrFile != "" {
		if err := writeAtomic(*addrFile, lis.Addr().String()); err != nil {
			return err
		}
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if *statsFile != "" {
				_ = writeAtomic(*statsFile, c.line(false))
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	srv.Stop()
	final := c.line(true)
	if *statsFile != "" {
		_ = writeAtomic(*statsFile, final)
	}
	fmt.Fprintln(stdout, final)
	return nil
}

func writeAtomic(path, text string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
