// Package receiver is the forwarder's OTLP input: the OTLP/gRPC TraceService and
// LogsService, and OTLP/HTTP (protobuf and JSON) at /v1/traces and /v1/logs.
//
// STW lifecycle records (stw.* log records) are decoded and published to the event
// pipeline; other log records and plain spans pass through unchanged. Bad input is
// answered, never a panic: a malformed request gets InvalidArgument (HTTP 400), a batch
// with some bad items gets partial success with the rejected count, a request over the
// size limit gets ResourceExhausted (HTTP 413), and a full queue gets Unavailable with a
// retry delay (HTTP 503 with Retry-After) so that senders retry instead of losing data.
package receiver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/metrics"
	"github.com/stwbridge/stwbridge/internal/options"
	"github.com/stwbridge/stwbridge/stwotlp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
)

// Defaults of the receivers.
const (
	// DefaultMaxRecvMsgSize bounds one OTLP/gRPC request, in bytes (4 MiB, as the Collector).
	DefaultMaxRecvMsgSize = 4 << 20
	// DefaultMaxRequestBodySize bounds one HTTP request body after decompression, in bytes.
	DefaultMaxRequestBodySize = 20 << 20
	// DefaultRetryAfter is the delay suggested to senders when the queue is full.
	DefaultRetryAfter = time.Second
)

// Consumer takes what the receivers decode. The forwarder implements it over the event
// pipeline and the exporter (or the stdout printer).
type Consumer interface {
	// Publish hands one lifecycle event on without blocking; false means it was
	// dropped (queue full). Its body must not be modified afterwards.
	Publish(e bridge.Event) bool
	// ExportLogs passes non-STW log records on unchanged.
	ExportLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) error
	// ExportTraces passes plain spans on unchanged.
	ExportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) error
}

// BatchPublisher is a Consumer that takes the events of a request all at once or
// none of them (*bridge.Pipeline's PublishBatch): a refused request is then retried
// by its sender whole, and nothing of it is dropped. It copies the events it keeps:
// the receiver reuses the slice for the next request once PublishBatch returns.
type BatchPublisher interface {
	PublishBatch(events []bridge.Event) bool
}

// Options configure a Receiver. Zero fields take the defaults.
type Options struct {
	// MaxRecvMsgSize bounds one OTLP/gRPC request, in bytes. Default
	// DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
	// MaxRequestBodySize bounds one HTTP request body after decompression, in bytes.
	// Default DefaultMaxRequestBodySize.
	MaxRequestBodySize int64
	// RetryAfter is the delay suggested to senders refused as retryable. Default
	// DefaultRetryAfter.
	RetryAfter time.Duration
}

// Option changes Options.
type Option func(*Options)

// WithMaxRecvMsgSize bounds one OTLP/gRPC request, in bytes.
func WithMaxRecvMsgSize(n int) Option { return func(o *Options) { o.MaxRecvMsgSize = n } }

// WithMaxRequestBodySize bounds one HTTP request body after decompression, in bytes.
func WithMaxRequestBodySize(n int64) Option { return func(o *Options) { o.MaxRequestBodySize = n } }

// WithRetryAfter sets the delay suggested to senders refused as retryable.
func WithRetryAfter(d time.Duration) Option { return func(o *Options) { o.RetryAfter = d } }

// Stats are the receivers' counters.
type Stats struct {
	Requests       uint64 // export requests received, both protocols
	Events         uint64 // stw.* lifecycle events decoded and published
	Dropped        uint64 // events the pipeline refused (queue full); the request was refused as retryable
	Refused        uint64 // events of requests refused whole (queue full, BatchPublisher): the sender retries them
	Logs           uint64 // other log records passed through
	Spans          uint64 // plain spans passed through
	Rejected       uint64 // records or spans rejected as bad (partial success)
	Malformed      uint64 // requests refused as undecodable
	Oversize       uint64 // requests refused as over the size limit (HTTP 413, gRPC ResourceExhausted)
	PassFailed     uint64 // pass-through requests the downstream refused
	RetryableFails uint64 // requests answered with a retryable refusal
}

// Receiver decodes OTLP requests and hands them to a Consumer. One Receiver serves
// both protocols; see RegisterGRPC and Handler.
type Receiver struct {
	consumer Consumer
	opts     Options

	requests, events, dropped, logs, spans, rejected metrics.Counter
	malformed, oversize, passFailed, retryable       metrics.Counter
	refused                                          metrics.Counter
}

// New returns a receiver that hands what it decodes to c.
func New(c Consumer, opt ...Option) *Receiver {
	opts := options.Apply(opt)
	options.Positive(&opts.MaxRecvMsgSize, DefaultMaxRecvMsgSize)
	options.Positive(&opts.MaxRequestBodySize, DefaultMaxRequestBodySize)
	options.Positive(&opts.RetryAfter, DefaultRetryAfter)
	return &Receiver{consumer: c, opts: opts}
}

// Stats returns the counters so far.
func (r *Receiver) Stats() Stats {
	return Stats{
		Requests: r.requests.Load(), Events: r.events.Load(), Dropped: r.dropped.Load(),
		Logs: r.logs.Load(), Spans: r.spans.Load(), Rejected: r.rejected.Load(),
		Malformed: r.malformed.Load(), Oversize: r.oversize.Load(),
		PassFailed: r.passFailed.Load(), RetryableFails: r.retryable.Load(),
		Refused: r.refused.Load(),
	}
}

// refusal is a request-level error with its gRPC code and HTTP status.
type refusal struct {
	code       codes.Code
	status     int
	msg        string
	retryAfter time.Duration
}

func (e *refusal) Error() string { return e.msg }

func malformed(format string, a ...any) *refusal {
	return &refusal{code: codes.InvalidArgument, status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

func (r *Receiver) unavailable(format string, a ...any) *refusal {
	r.retryable.Inc()
	return &refusal{code: codes.Unavailable, status: http.StatusServiceUnavailable,
		msg: fmt.Sprintf(format, a...), retryAfter: r.opts.RetryAfter}
}

// exportLogs handles one decoded logs request.
func (r *Receiver) exportLogs(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	r.requests.Inc()
	return r.exportDecoded(ctx, decodeEvents(req))
}

// exportDecoded handles the decoded records of one logs request.
func (r *Receiver) exportDecoded(ctx context.Context, d stwotlp.DecodedLogs) (*collogspb.ExportLogsServiceResponse, error) {
	if bp, ok := r.consumer.(BatchPublisher); ok {
		if !bp.PublishBatch(d.Events) {
			// Nothing was taken: the sender's retry duplicates nothing.
			r.refused.Add(uint64(len(d.Events)))
			return nil, r.unavailable("stwbridge queue full: %d lifecycle events refused; retry later", len(d.Events))
		}
		r.events.Add(uint64(len(d.Events)))
		return r.passLogs(ctx, d)
	}
	// Stop at the first refusal: the sender retries the whole request, so what
	// follows would only be published twice.
	dropped := 0
	for i, e := range d.Events {
		if !r.consumer.Publish(e) {
			dropped = len(d.Events) - i
			break
		}
	}
	r.events.Add(uint64(len(d.Events) - dropped))
	if dropped > 0 {
		// Refuse as retryable before passing anything through, so the sender's retry
		// duplicates nothing downstream; the assembler drops the events it already has.
		r.dropped.Add(uint64(dropped))
		return nil, r.unavailable("stwbridge queue full: %d of %d lifecycle events dropped; retry later", dropped, len(d.Events))
	}
	return r.passLogs(ctx, d)
}

// passLogs passes the non-STW records of a request on and answers it.
func (r *Receiver) passLogs(ctx context.Context, d stwotlp.DecodedLogs) (*collogspb.ExportLogsServiceResponse, error) {
	var badOther []error
	if d.Other != nil {
		var n int
		n, badOther = filterOtherLogs(d.Other)
		if n > 0 {
			if err := r.consumer.ExportLogs(ctx, d.Other); err != nil {
				r.passFailed.Inc()
				return nil, r.unavailable("stwbridge could not pass %d log records on: %v; retry later", n, err)
			}
			r.logs.Add(uint64(n))
		}
	}
	resp := &collogspb.ExportLogsServiceResponse{}
	if rejected := append(d.Rejected, badOther...); len(rejected) > 0 {
		r.rejected.Add(uint64(len(rejected)))
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{
			RejectedLogRecords: int64(len(rejected)),
			ErrorMessage:       summarize(rejected),
		}
	}
	return resp, nil
}

// decodeEvents is stwotlp.DecodeEventsRequest, with a panic in the codec turned into a
// rejection of the whole request rather than a crash of the forwarder.
func decodeEvents(req *collogspb.ExportLogsServiceRequest) (d stwotlp.DecodedLogs) {
	defer func() {
		if p := recover(); p != nil {
			d = stwotlp.DecodedLogs{Rejected: []error{fmt.Errorf("decoding failed: %v", p)}}
		}
	}()
	return stwotlp.DecodeEventsRequest(req)
}

// decodeEventsWire is stwotlp.DecodeEventsInto, with a panic turned into a rejection
// as above.
func decodeEventsWire(room []bridge.Event, data []byte) (d stwotlp.DecodedLogs, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, err = stwotlp.DecodedLogs{Rejected: []error{fmt.Errorf("decoding failed: %v", p)}}, nil
		}
	}()
	return stwotlp.DecodeEventsInto(room, data)
}

// exportTraces handles one decoded traces request: spans with valid ids pass through.
func (r *Receiver) exportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.requests.Inc()
	good, total, bad := filterSpans(req)
	resp := &coltracepb.ExportTraceServiceResponse{}
	if len(bad) > 0 {
		r.rejected.Add(uint64(len(bad)))
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{
			RejectedSpans: int64(len(bad)),
			ErrorMessage:  summarize(bad),
		}
	}
	n := total - len(bad)
	if n == 0 {
		return resp, nil
	}
	if err := r.consumer.ExportTraces(ctx, good); err != nil {
		r.passFailed.Inc()
		return nil, r.unavailable("stwbridge could not pass %d spans on: %v; retry later", n, err)
	}
	r.spans.Add(uint64(n))
	return resp, nil
}

// filterSpans returns the request without the spans whose ids are unusable (the request
// itself when all are good), the number of spans, and one error per bad span.
func filterSpans(req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceRequest, int, []error) {
	total := 0
	var bad []error
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				if err := checkSpan(s, total); err != nil {
					bad = append(bad, err)
				}
				total++
			}
		}
	}
	if len(bad) == 0 {
		return req, total, nil
	}
	out := &coltracepb.ExportTraceServiceRequest{}
	for _, rs := range req.GetResourceSpans() {
		nrs := &tracepb.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl}
		for _, ss := range rs.GetScopeSpans() {
			nss := &tracepb.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl}
			for _, s := range ss.GetSpans() {
				if checkSpan(s, 0) == nil {
					nss.Spans = append(nss.Spans, s)
				}
			}
			if len(nss.Spans) > 0 {
				nrs.ScopeSpans = append(nrs.ScopeSpans, nss)
			}
		}
		if len(nrs.ScopeSpans) > 0 {
			out.ResourceSpans = append(out.ResourceSpans, nrs)
		}
	}
	return out, total, bad
}

var zeroTrace [16]byte
var zeroSpan [8]byte

func checkSpan(s *tracepb.Span, i int) error {
	switch {
	case len(s.TraceId) != 16 || [16]byte(s.TraceId) == zeroTrace:
		return fmt.Errorf("span %d (%q): trace_id must be 16 bytes, not all zero (got %d bytes)", i, s.Name, len(s.TraceId))
	case len(s.SpanId) != 8 || [8]byte(s.SpanId) == zeroSpan:
		return fmt.Errorf("span %d (%q): span_id must be 8 bytes, not all zero (got %d bytes)", i, s.Name, len(s.SpanId))
	case len(s.ParentSpanId) != 0 && len(s.ParentSpanId) != 8:
		return fmt.Errorf("span %d (%q): parent_span_id must be empty or 8 bytes (got %d bytes)", i, s.Name, len(s.ParentSpanId))
	}
	for j, l := range s.Links {
		if len(l.TraceId) != 16 || len(l.SpanId) != 8 {
			return fmt.Errorf("span %d (%q): link %d: trace_id must be 16 bytes and span_id 8 (got %d and %d)", i, s.Name, j, len(l.TraceId), len(l.SpanId))
		}
	}
	return nil
}

// filterOtherLogs drops from req, in place, the log records whose ids have a length
// no OTLP receiver accepts, and returns the number of records kept and one error per
// record dropped.
func filterOtherLogs(req *collogspb.ExportLogsServiceRequest) (int, []error) {
	kept := 0
	var bad []error
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			good := sl.LogRecords[:0]
			for _, rec := range sl.LogRecords {
				if t, s := len(rec.TraceId), len(rec.SpanId); (t != 0 && t != 16) || (s != 0 && s != 8) {
					bad = append(bad, fmt.Errorf("log record %q: trace_id must be empty or 16 bytes and span_id empty or 8 (got %d and %d)", rec.EventName, t, s))
					continue
				}
				good = append(good, rec)
			}
			clear(sl.LogRecords[len(good):])
			sl.LogRecords = good
			kept += len(good)
		}
	}
	return kept, bad
}

// summarize joins the first few errors into one message.
func summarize(errs []error) string {
	const show = 3
	parts := make([]string, 0, show+1)
	for _, err := range errs[:min(show, len(errs))] {
		parts = append(parts, err.Error())
	}
	if len(errs) > show {
		parts = append(parts, fmt.Sprintf("and %d more", len(errs)-show))
	}
	return strings.Join(parts, "; ")
}
