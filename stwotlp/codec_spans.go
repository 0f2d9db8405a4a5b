package stwotlp

import (
	"errors"
	"fmt"
	"math"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

func clampUint32(n int) uint32 {
	switch {
	case n <= 0:
		return 0
	case uint64(n) > math.MaxUint32:
		return math.MaxUint32
	default:
		return uint32(n)
	}
}

// SpanError is why DecodeSpans rejected one span.
type SpanError struct {
	// Resource, Scope and Span are the indexes of the span in the request's
	// resource_spans, that resource's scope_spans and that scope's spans.
	Resource, Scope, Span int
	// Name is the span's name.
	Name string
	// Err is the problem.
	Err error
}

// Error names the span and the problem.
func (e *SpanError) Error() string {
	return fmt.Sprintf("resource_spans[%d].scope_spans[%d].spans[%d] (%q): %v",
		e.Resource, e.Scope, e.Span, e.Name, e.Err)
}

// Unwrap returns the problem.
func (e *SpanError) Unwrap() error { return e.Err }

// DecodeSpans decodes the spans of a traces request; bad spans are rejected alone
// (each error is a *SpanError). A span carrying stw.unfinished=true decodes with
// Unfinished set and without that attribute. Spans of one ResourceSpans share one
// *resource.Resource, spans of one ScopeSpans one *instrumentation.Scope. OTLP has
// no field for StreamID and ChildSpanCount: they decode as zero.
func DecodeSpans(req *coltracepb.ExportTraceServiceRequest) ([]bridge.Span, []error) {
	var (
		spans []bridge.Span
		errs  []error
	)
	for ri, rs := range req.GetResourceSpans() {
		var (
			res     *resource.Resource
			resDone bool
		)
		for si, ss := range rs.GetScopeSpans() {
			var (
				scope     *instrumentation.Scope
				scopeDone bool
			)
			for i, sp := range ss.GetSpans() {
				s, err := decodeSpan(sp)
				if err != nil {
					errs = append(errs, &SpanError{ri, si, i, sp.GetName(), err})
					continue
				}
				if !resDone {
					res, resDone = resourceFromProto(rs.Resource, rs.SchemaUrl), true
				}
				if !scopeDone {
					scope, scopeDone = scopeFromProto(ss.Scope, ss.SchemaUrl), true
				}
				s.Resource, s.Scope = res, scope
				spans = append(spans, s)
			}
		}
	}
	return spans, errs
}

func decodeSpan(sp *tracepb.Span) (bridge.Span, error) {
	var s bridge.Span
	if sp == nil {
		return s, errors.New("the span is null")
	}
	if len(sp.TraceId) != len(s.TraceID) {
		return s, fmt.Errorf("trace_id has %d bytes, want 16", len(sp.TraceId))
	}
	if len(sp.SpanId) != len(s.SpanID) {
		return s, fmt.Errorf("span_id has %d bytes, want 8", len(sp.SpanId))
	}
	copy(s.TraceID[:], sp.TraceId)
	copy(s.SpanID[:], sp.SpanId)
	if !s.TraceID.IsValid() || !s.SpanID.IsValid() {
		return s, errors.New("trace_id or span_id is all zero")
	}
	switch len(sp.ParentSpanId) {
	case 0:
	case len(s.Parent):
		copy(s.Parent[:], sp.ParentSpanId)
	default:
		return s, fmt.Errorf("parent_span_id has %d bytes, want 8 or none", len(sp.ParentSpanId))
	}
	ts, err := parseTraceState(sp.TraceState)
	if err != nil {
		return s, fmt.Errorf("trace_state: %w", err)
	}
	if sp.Kind < 0 || sp.Kind > tracepb.Span_SPAN_KIND_CONSUMER {
		return s, fmt.Errorf("kind is %d, want an OTLP span kind from 0 to 5", sp.Kind)
	}
	code, ok := statusCodeFromWire(int64(sp.GetStatus().GetCode()))
	if !ok {
		return s, fmt.Errorf("status code is %d, want 0 (unset), 1 (ok) or 2 (error)", sp.GetStatus().GetCode())
	}
	s.TraceState = ts
	s.TraceFlags = trace.TraceFlags(sp.Flags & 0xff)
	s.RemoteParent = sp.Flags&flagsIsRemote != 0
	s.Name = sp.Name
	s.SpanKind = trace.SpanKind(sp.Kind)
	s.Start = timeFromUnixNano(sp.StartTimeUnixNano)
	s.End = timeFromUnixNano(sp.EndTimeUnixNano)
	s.Status = bridge.Status{Code: code, Description: sp.GetStatus().GetMessage()}
	s.DroppedAttributes = int(sp.DroppedAttributesCount)
	s.DroppedEvents = int(sp.DroppedEventsCount)
	s.DroppedLinks = int(sp.DroppedLinksCount)
	s.Attributes = attrs(sp.Attributes)
	// stw.unfinished=true is the Unfinished flag, not an attribute of the span.
	kept := s.Attributes[:0]
	for _, kv := range s.Attributes {
		if isUnfinishedAttr(kv) {
			s.Unfinished = true
			continue
		}
		kept = append(kept, kv)
	}
	s.Attributes = kept
	if len(s.Attributes) == 0 {
		s.Attributes = nil
	}
	if s.Unfinished {
		s.Status.Code = codes.Error
	}
	if len(sp.Events) > 0 {
		s.Events = make([]bridge.SpanEvent, 0, len(sp.Events))
		for _, ev := range sp.Events {
			if ev == nil {
				continue
			}
			s.Events = append(s.Events, bridge.SpanEvent{
				Name:                  ev.Name,
				Time:                  timeFromUnixNano(ev.TimeUnixNano),
				Attributes:            attrs(ev.Attributes),
				DroppedAttributeCount: int(ev.DroppedAttributesCount),
			})
		}
	}
	if len(sp.Links) > 0 {
		s.Links = make([]bridge.Link, 0, len(sp.Links))
		for i, l := range sp.Links {
			if l == nil {
				continue
			}
			var tid trace.TraceID
			var sid trace.SpanID
			if len(l.TraceId) != len(tid) || len(l.SpanId) != len(sid) {
				return s, fmt.Errorf("links[%d]: trace_id has %d bytes and span_id %d, want 16 and 8", i, len(l.TraceId), len(l.SpanId))
			}
			copy(tid[:], l.TraceId)
			copy(sid[:], l.SpanId)
			lts, err := parseTraceState(l.TraceState)
			if err != nil {
				return s, fmt.Errorf("links[%d].trace_state: %w", i, err)
			}
			s.Links = append(s.Links, bridge.Link{
				SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
					TraceID:    tid,
					SpanID:     sid,
					TraceFlags: trace.TraceFlags(l.Flags & 0xff),
					TraceState: lts,
					Remote:     l.Flags&flagsIsRemote != 0,
				}),
				Attributes:            attrs(l.Attributes),
				DroppedAttributeCount: int(l.DroppedAttributesCount),
			})
		}
	}
	return s, nil
}

func isUnfinishedAttr(kv attribute.KeyValue) bool {
	return kv.Key == AttrUnfinished && kv.Value.Type() == attribute.BOOL && kv.Value.AsBool()
}

func parseTraceState(s string) (trace.TraceState, error) {
	if s == "" {
		return trace.TraceState{}, nil
	}
	return trace.ParseTraceState(s)
}
