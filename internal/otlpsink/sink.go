// Package otlpsink is an OTLP/gRPC server for tests and benchmarks: it accepts trace
// and logs exports on loopback and keeps what it received.
package otlpsink

import (
	"context"
	"net"
	"sync"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the Collector's OTLP exporter sends gzip
)

// Sink is a running OTLP/gRPC server that records every export it accepts.
type Sink struct {
	coltracepb.UnimplementedTraceServiceServer

	srv  *grpc.Server
	addr string

	mu      sync.Mutex
	traces  []*coltracepb.ExportTraceServiceRequest
	logs    []*collogspb.ExportLogsServiceRequest
	changed chan struct{}
	// OnTraces and OnLogs, when set before traffic, are called with each request;
	// a returned error is the gRPC answer (to test refusals and retries).
	OnTraces func(*coltracepb.ExportTraceServiceRequest) error
	OnLogs   func(*collogspb.ExportLogsServiceRequest) error
	// PartialTraces and PartialLogs, when set before traffic, give the partial success
	// answered for an accepted request (nil: full success); the request is still kept.
	PartialTraces func(*coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTracePartialSuccess
	PartialLogs   func(*collogspb.ExportLogsServiceRequest) *collogspb.ExportLogsPartialSuccess
}

// Start listens on addr (use "127.0.0.1:0" for any free port) and serves until Stop.
func Start(addr string, opts ...grpc.ServerOption) (*Sink, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return Serve(lis, opts...), nil
}

// Serve serves on a listener the caller made (one that counts bytes, say) until Stop.
func Serve(lis net.Listener, opts ...grpc.ServerOption) *Sink {
	s := &Sink{srv: grpc.NewServer(opts...), addr: lis.Addr().String(), changed: make(chan struct{})}
	coltracepb.RegisterTraceServiceServer(s.srv, s)
	collogspb.RegisterLogsServiceServer(s.srv, logsServer{s: s})
	go func() { _ = s.srv.Serve(lis) }()
	return s
}

// SetHooks runs set with the sink locked, so that hooks (OnTraces, OnLogs,
// PartialTraces, PartialLogs) can be changed while requests arrive, race-free.
func (s *Sink) SetHooks(set func(*Sink)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set(s)
}

// Addr is the host:port the sink listens on.
func (s *Sink) Addr() string { return s.addr }

// Stop stops the server at once.
func (s *Sink) Stop() { s.srv.Stop() }

// Export implements the TraceService.
func (s *Sink) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	onTraces, partial := s.OnTraces, s.PartialTraces
	s.mu.Unlock()
	if onTraces != nil {
		if err := onTraces(req); err != nil {
			return nil, err
		}
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if partial != nil {
		resp.PartialSuccess = partial(req)
	}
	s.mu.Lock()
	s.traces = append(s.traces, req)
	s.notifyLocked()
	s.mu.Unlock()
	return resp, nil
}

// logsServer adapts the LogsService, whose method name clashes with the TraceService's.
type logsServer struct {
	collogspb.UnimplementedLogsServiceServer
	s *Sink
}

func (l logsServer) Export(_ context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	s := l.s
	s.mu.Lock()
	onLogs, partial := s.OnLogs, s.PartialLogs
	s.mu.Unlock()
	if onLogs != nil {
		if err := onLogs(req); err != nil {
			return nil, err
		}
	}
	resp := &collogspb.ExportLogsServiceResponse{}
	if partial != nil {
		resp.PartialSuccess = partial(req)
	}
	s.mu.Lock()
	s.logs = append(s.logs, req)
	s.notifyLocked()
	s.mu.Unlock()
	return resp, nil
}

func (s *Sink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Spans returns every span received so far, flattened.
func (s *Sink) Spans() []*tracepb.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return flatten(s.traces, (*coltracepb.ExportTraceServiceRequest).GetResourceSpans,
		(*tracepb.ResourceSpans).GetScopeSpans, (*tracepb.ScopeSpans).GetSpans)
}

// LogRecords returns every log record received so far, flattened.
func (s *Sink) LogRecords() []*logspb.LogRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return flatten(s.logs, (*collogspb.ExportLogsServiceRequest).GetResourceLogs,
		(*logspb.ResourceLogs).GetScopeLogs, (*logspb.ScopeLogs).GetLogRecords)
}

// flatten returns the items of every scope of every resource of reqs, in order.
func flatten[Req, Res, Scope, Item any](reqs []Req, resources func(Req) []Res,
	scopes func(Res) []Scope, items func(Scope) []Item) []Item {
	var out []Item
	for _, req := range reqs {
		for _, res := range resources(req) {
			for _, sc := range scopes(res) {
				out = append(out, items(sc)...)
			}
		}
	}
	return out
}

// TraceRequests and LogRequests return the requests received so far.
func (s *Sink) TraceRequests() []*coltracepb.ExportTraceServiceRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*coltracepb.ExportTraceServiceRequest(nil), s.traces...)
}

// LogRequests returns the logs requests received so far.
func (s *Sink) LogRequests() []*collogspb.ExportLogsServiceRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*collogspb.ExportLogsServiceRequest(nil), s.logs...)
}

// WaitFor polls cond each time something arrives, until it holds or timeout passes.
func (s *Sink) WaitFor(timeout time.Duration, cond func(*Sink) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s) {
			return true
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			return cond(s)
		}
	}
}
