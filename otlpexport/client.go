package otlpexport

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// reconnectMaxDelay caps gRPC's own wait between connection attempts (120 s by
// default), so that a receiver that comes back is found within a few seconds.
const reconnectMaxDelay = 5 * time.Second

// signalCounters count the items (log records or spans) of one signal.
type signalCounters struct {
	sent, rejected, failed, dropped, requests atomic.Uint64
}

func (c *signalCounters) stats() SignalStats {
	return SignalStats{
		Sent:     c.sent.Load(),
		Rejected: c.rejected.Load(),
		Failed:   c.failed.Load(),
		Dropped:  c.dropped.Load(),
		Requests: c.requests.Load(),
	}
}

// signalState is the configuration and the counters of one signal.
type signalState struct {
	cfg      signalConfig
	counters signalCounters
}

// client sends the requests of one signal over one connection.
type client struct {
	sig      *signalState
	conn     *grpc.ClientConn
	md       metadata.MD
	callOpts []grpc.CallOption
}

// preEncoded is a request already in protobuf wire format: it is marshalled once,
// reusing the sizes computed when it was queued, and the bytes serve every attempt.
type preEncoded struct {
	data []byte
	// more, when set, follow data: requests queued in wire format are sent as they
	// are, not copied into one buffer.
	more [][]byte
}

// wireCodec is gRPC's proto codec, except that it sends a preEncoded as it is. It
// keeps the name "proto", so the content type on the wire is application/grpc+proto
// as usual.
type wireCodec struct{}

var protoCodec = encoding.GetCodecV2(grpcproto.Name)

func (wireCodec) Name() string { return grpcproto.Name }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if p, ok := v.(*preEncoded); ok {
		if len(p.more) == 0 {
			return mem.BufferSlice{mem.SliceBuffer(p.data)}, nil
		}
		bs := make(mem.BufferSlice, 0, 1+len(p.more))
		bs = append(bs, mem.SliceBuffer(p.data))
		for _, b := range p.more {
			bs = append(bs, mem.SliceBuffer(b))
		}
		return bs, nil
	}
	return protoCodec.Marshal(v)
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error { return protoCodec.Unmarshal(data, v) }

// dial makes the connection of a signal (lazily: nothing is sent until the first
// request). extra are the caller's dial options.
func dial(sc signalConfig, extra []grpc.DialOption) (*grpc.ClientConn, error) {
	var creds credentials.TransportCredentials
	if sc.insecure {
		creds = insecure.NewCredentials()
	} else {
		cfg := sc.tls
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(cfg)
	}
	bo := backoff.DefaultConfig
	bo.MaxDelay = reconnectMaxDelay
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 10 * time.Second}),
	}
	opts = append(opts, extra...)
	conn, err := grpc.NewClient(sc.endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlpexport: %s endpoint %s: %w", sc.signal, sc.endpoint, err)
	}
	return conn, nil
}

func newClient(sig *signalState, conn *grpc.ClientConn) *client {
	sc := sig.cfg
	c := &client{sig: sig, conn: conn, callOpts: []grpc.CallOption{grpc.ForceCodecV2(wireCodec{})}}
	if len(sc.headers) > 0 {
		c.md = metadata.New(sc.headers)
	}
	if sc.compression == "gzip" {
		c.callOpts = append(c.callOpts, grpc.UseCompressor(gzip.Name))
	}
	return c
}

// partial is what a receiver refused in an accepted request (OTLP partial success).
type partial struct {
	rejected int64
	message  string
}

// appendWire appends r in wire format to buf. The sizes were computed (and cached in
// the messages) when r was queued, and nothing changes a queued request, so they are
// not computed again.
func (r *request) appendWire(buf []byte) ([]byte, error) {
	if r.wire != nil {
		return append(buf, r.wire...), nil
	}
	var m proto.Message = r.logs
	if r.signal == signalTraces {
		m = r.traces
	}
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf, m)
	if err != nil {
		return buf, fmt.Errorf("otlpexport: encoding the request: %w", err)
	}
	return out, nil
}

// encodeBatch encodes requests of one signal as one request: protobuf messages
// concatenate, and the repeated resource_logs (resource_spans) of the parts add up.
func encodeBatch(batch []*request) (*preEncoded, error) {
	if len(batch) == 1 && batch[0].wire != nil {
		return &preEncoded{data: batch[0].wire}, nil
	}
	if !slices.ContainsFunc(batch, func(r *request) bool { return r.wire == nil }) {
		p := &preEncoded{data: batch[0].wire, more: make([][]byte, 0, len(batch)-1)}
		for _, r := range batch[1:] {
			p.more = append(p.more, r.wire)
		}
		return p, nil
	}
	size := 0
	for _, r := range batch {
		size += r.bytes
	}
	buf := make([]byte, 0, size)
	for _, r := range batch {
		var err error
		if buf, err = r.appendWire(buf); err != nil {
			return nil, err
		}
	}
	return &preEncoded{data: buf}, nil
}

// export sends an encoded request once, bounded by the per-request timeout.
func (c *client) export(ctx context.Context, sig signal, wire *preEncoded) (partial, error) {
	ctx, cancel := context.WithTimeout(ctx, c.sig.cfg.timeout)
	defer cancel()
	if c.md != nil {
		ctx = metadata.NewOutgoingContext(ctx, c.md)
	}
	if sig == signalLogs {
		resp := &collogspb.ExportLogsServiceResponse{}
		if err := c.conn.Invoke(ctx, collogspb.LogsService_Export_FullMethodName, wire, resp, c.callOpts...); err != nil {
			return partial{}, err
		}
		ps := resp.GetPartialSuccess()
		return partial{rejected: ps.GetRejectedLogRecords(), message: ps.GetErrorMessage()}, nil
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if err := c.conn.Invoke(ctx, coltracepb.TraceService_Export_FullMethodName, wire, resp, c.callOpts...); err != nil {
		return partial{}, err
	}
	ps := resp.GetPartialSuccess()
	return partial{rejected: ps.GetRejectedSpans(), message: ps.GetErrorMessage()}, nil
}
