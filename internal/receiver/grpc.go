package receiver

import (
	"context"
	"sync"

	"github.com/stwbridge/stwbridge/bridge"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ServerOptions returns the gRPC server options the receiver needs: its size limit and
// a codec that hands export requests over undecoded, so that a malformed request is
// answered InvalidArgument (gRPC's own decoding would answer Internal).
func (r *Receiver) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(r.opts.MaxRecvMsgSize),
		grpc.ForceServerCodecV2(rawCodec{proto: encoding.GetCodecV2(grpcproto.Name)}),
	}
}

// RegisterGRPC registers the OTLP TraceService and LogsService on s, which must have
// been created with ServerOptions.
func (r *Receiver) RegisterGRPC(s *grpc.Server) {
	s.RegisterService(&traceServiceDesc, r)
	s.RegisterService(&logsServiceDesc, r)
}

// rawRequest is an export request's bytes, decoded by the handler itself. They may be
// gRPC's pooled receive buffer, returned to the pool when the call is done (free):
// nothing decoded from them may share their memory (the decoders copy what they keep).
type rawRequest struct {
	buf    mem.Buffer // a one-frame request's gRPC buffer
	joined *[]byte    // or the request's frames joined, from joinedBufs
	data   []byte
}

// Bytes returns the request as received, for interceptors that keep it (the
// persistent queue). They are valid until the call returns: an interceptor copies
// what it keeps.
func (r *rawRequest) Bytes() []byte { return r.data }

// free returns the request's buffer to its pool.
func (r *rawRequest) free() {
	if r.buf != nil {
		r.buf.Free()
	}
	if r.joined != nil && cap(*r.joined) <= maxJoinedBuf {
		joinedBufs.Put(r.joined)
	}
	r.buf, r.joined, r.data = nil, nil, nil
}

// joinedBufs recycles the buffers requests of several frames are joined in. gRPC's
// own pool would do, but it clears a buffer of the next size tier up for each (1 MiB
// for a 64 KiB request); these are overwritten whole instead.
var joinedBufs sync.Pool // of *[]byte

// maxJoinedBuf is the largest buffer joinedBufs keeps, in bytes.
const maxJoinedBuf = 1 << 20

// join copies the frames of data into a buffer of joinedBufs.
func join(data mem.BufferSlice) *[]byte {
	n := data.Len()
	b, _ := joinedBufs.Get().(*[]byte)
	if b == nil || cap(*b) < n {
		b = new([]byte)
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	data.CopyTo(*b)
	return b
}

// rawCodec passes *rawRequest through as bytes and everything else (responses, the
// health service) to the standard proto codec.
type rawCodec struct{ proto encoding.CodecV2 }

func (c rawCodec) Name() string { return grpcproto.Name }

// Marshal encodes a response. A full success (no partial_success) is an empty message,
// zero bytes on the wire: sent without going through proto.Marshal, as every
// successful export is answered so.
func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch resp := v.(type) {
	case *collogspb.ExportLogsServiceResponse:
		if resp.GetPartialSuccess() == nil && len(resp.ProtoReflect().GetUnknown()) == 0 {
			return mem.BufferSlice{}, nil
		}
	case *coltracepb.ExportTraceServiceResponse:
		if resp.GetPartialSuccess() == nil && len(resp.ProtoReflect().GetUnknown()) == 0 {
			return mem.BufferSlice{}, nil
		}
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if raw, ok := v.(*rawRequest); ok {
		// One buffer (a request in one frame) is kept rather than copied; more are
		// joined (join).
		if len(data) == 1 {
			raw.buf = data[0]
			raw.buf.Ref()
			raw.data = raw.buf.ReadOnlyData()
		} else {
			raw.joined = join(data)
			raw.data = *raw.joined
		}
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// serviceServer is what the descriptors' handlers call; *Receiver implements it.
type serviceServer interface {
	grpcTraces(ctx context.Context, raw *rawRequest) (*coltracepb.ExportTraceServiceResponse, error)
	grpcLogs(ctx context.Context, raw *rawRequest) (*collogspb.ExportLogsServiceResponse, error)
}

var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*serviceServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			return handle(srv, ctx, dec, in, "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
				func(ctx context.Context, raw *rawRequest) (any, error) {
					return srv.(serviceServer).grpcTraces(ctx, raw)
				})
		},
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

var logsServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.logs.v1.LogsService",
	HandlerType: (*serviceServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			return handle(srv, ctx, dec, in, "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
				func(ctx context.Context, raw *rawRequest) (any, error) { return srv.(serviceServer).grpcLogs(ctx, raw) })
		},
	}},
	Metadata: "opentelemetry/proto/collector/logs/v1/logs_service.proto",
}

// handle runs one unary call through the server's interceptors (auth and limits can be
// added there), as generated code does.
func handle(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor,
	method string, call func(context.Context, *rawRequest) (any, error)) (any, error) {
	raw := new(rawRequest)
	defer raw.free()
	if err := dec(raw); err != nil {
		if r, ok := srv.(*Receiver); ok && status.Code(err) == codes.ResourceExhausted {
			return nil, r.countOversize(err)
		}
		return nil, err
	}
	if interceptor == nil {
		return call(ctx, raw)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
	return interceptor(ctx, raw, info, func(ctx context.Context, req any) (any, error) {
		return call(ctx, req.(*rawRequest))
	})
}

// countOversize counts a request that gRPC refused while reading it, as over
// MaxRecvMsgSize. gRPC has already answered ResourceExhausted, with a message that
// gives the request's size and the limit; err is returned as it is.
func (r *Receiver) countOversize(err error) error {
	r.requests.Inc()
	r.oversize.Inc()
	return err
}

func (r *Receiver) grpcTraces(ctx context.Context, raw *rawRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(raw.data, req); err != nil {
		r.requests.Inc()
		r.malformed.Inc()
		return nil, status.Errorf(codes.InvalidArgument, "malformed OTLP traces request: %v", err)
	}
	resp, err := r.exportTraces(ctx, req)
	return resp, grpcError(err)
}

func (r *Receiver) grpcLogs(ctx context.Context, raw *rawRequest) (*collogspb.ExportLogsServiceResponse, error) {
	room := eventRoom.Get().(*[]bridge.Event)
	d, err := decodeEventsWire(*room, raw.data)
	r.requests.Inc()
	if err != nil {
		eventRoom.Put(room)
		r.malformed.Inc()
		return nil, status.Errorf(codes.InvalidArgument, "malformed OTLP logs request: %v", err)
	}
	resp, err := r.exportDecoded(ctx, d)
	// The consumer copied the events it took (Consumer, BatchPublisher).
	if cap(d.Events) <= maxEventRoom {
		clear(d.Events)
		*room = d.Events[:0]
		eventRoom.Put(room)
	}
	return resp, grpcError(err)
}

// eventRoom recycles the slices the events of gRPC logs requests are decoded into.
var eventRoom = sync.Pool{New: func() any { return new([]bridge.Event) }}

// maxEventRoom is the most events whose slice eventRoom keeps: the room of larger
// requests is left to the garbage collector.
const maxEventRoom = 8192

// grpcError turns a refusal into a gRPC status, with RetryInfo when it is retryable.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	ref, ok := err.(*refusal)
	if !ok {
		return status.Error(codes.Internal, err.Error())
	}
	st := status.New(ref.code, ref.msg)
	if ref.retryAfter > 0 {
		if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(ref.retryAfter)}); err == nil {
			st = withInfo
		}
	}
	return st.Err()
}
