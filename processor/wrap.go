package processor

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"

	"github.com/stwbridge/stwbridge/bridge"
)

// Wrap returns a TracerProvider whose spans stream their changes the moment they
// happen: SetName publishes UpdateName, SetStatus a StatusUpdate and SetAttributes an
// Attributes event, synchronously and without blocking. tp is normally the SDK
// TracerProvider this processor is registered with.
//
// The spans it hands out are also what trace.SpanFromContext returns for the contexts
// it hands out, so instrumentation that renames "the current span" (an HTTP handler
// setting its route, for example) is streamed too; spans started under them come
// from the wrapped provider, and span.TracerProvider() returns the wrapped provider.
//
// A wrapped span records a panic passing through a deferred End as the SDK does (an
// "exception" event, then the panic goes on), whatever the provider's panic-recording
// setting, which a wrapper cannot read.
func (p *Processor) Wrap(tp trace.TracerProvider) trace.TracerProvider {
	if w, ok := tp.(*tracerProvider); ok && w.p == p {
		return w
	}
	return &tracerProvider{tp: tp, p: p}
}

// tracerProvider is the TracerProvider Wrap returns.
type tracerProvider struct {
	embedded.TracerProvider
	tp      trace.TracerProvider
	p       *Processor
	tracers sync.Map // inner trace.Tracer -> *tracer
}

// Tracer returns a wrapped tracer; one per tracer of the wrapped provider.
func (w *tracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	inner := w.tp.Tracer(name, opts...)
	if inner == nil || !reflect.TypeOf(inner).Comparable() {
		return &tracer{inner: inner, tp: w}
	}
	if t, ok := w.tracers.Load(inner); ok {
		return t.(*tracer)
	}
	t, _ := w.tracers.LoadOrStore(inner, &tracer{inner: inner, tp: w})
	return t.(*tracer)
}

// tracer is a wrapped tracer.
type tracer struct {
	embedded.Tracer
	inner trace.Tracer
	tp    *tracerProvider
}

// Start starts a span with the wrapped tracer and returns it wrapped, in a context
// that holds the wrapper.
func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	ctx, s := t.inner.Start(ctx, name, opts...)
	w := t.tp.p.wrap(s, t.tp)
	return trace.ContextWithSpan(ctx, w), w
}

// wrap returns the wrapper of s: the one embedded in its state when the processor
// published s (no allocation), a new one otherwise.
func (p *Processor) wrap(s trace.Span, tp *tracerProvider) *span {
	if s.SpanContext().IsSampled() {
		if st := p.reg.get(keyOf(s.SpanContext())); st != nil && trace.Span(st.rw) == s {
			w := &st.wrapped
			w.Span, w.st, w.tp = s, st, tp
			return w
		}
	}
	return &span{Span: s, tp: tp}
}

// span is a wrapped span. It embeds the SDK's span, so it has every method of it,
// and overrides those that stream a change.
type span struct {
	trace.Span
	st *spanState // nil when the processor does not publish the span
	tp *tracerProvider
}

// SetName renames the span and publishes UpdateName at once.
func (s *span) SetName(name string) {
	st := s.st
	if st == nil {
		s.Span.SetName(name)
		return
	}
	now := time.Now()
	str := st.str
	str.mu.Lock()
	// Renaming under the stream's lock orders it with the scan, which reads the name
	// under the same lock: a stale name is never published after this one.
	s.Span.SetName(name)
	if !st.ended {
		if st.suppressed {
			s.tp.p.suppressed.Add(1)
		} else {
			s.tp.p.renameLocked(st, name, now)
		}
	}
	str.mu.Unlock()
}

// SetStatus sets the span's status and publishes a StatusUpdate when the status the
// span holds changed (the SDK ignores an Error after Ok, for example).
func (s *span) SetStatus(code codes.Code, description string) {
	st := s.st
	if st == nil {
		s.Span.SetStatus(code, description)
		return
	}
	now := time.Now()
	str := st.str
	str.mu.Lock()
	s.Span.SetStatus(code, description)
	if !st.ended && !st.pending { // a held-back span's status leaves with its SpanOpen or end
		if cur := bridge.Status(st.rw.Status()); cur != st.publishedStatus() {
			if st.suppressed {
				s.tp.p.suppressed.Add(1)
			} else if body := (&bridge.StatusUpdate{Status: cur}); s.tp.p.publishLocked(str, st.envelope(now, body)) {
				st.lastStatus = body
			}
		}
	}
	str.mu.Unlock()
}

// SetAttributes sets attributes on the span and publishes them in an Attributes
// event (within the processor's attribute limits).
func (s *span) SetAttributes(kv ...attribute.KeyValue) {
	st := s.st
	if st == nil || len(kv) == 0 {
		s.Span.SetAttributes(kv...)
		return
	}
	// The caller may reuse kv: the event gets its own copy, without invalid ones.
	attrs := slices.DeleteFunc(slices.Clone(kv), func(a attribute.KeyValue) bool { return !a.Valid() })
	p := s.tp.p
	attrs, _ = p.limitAttrs(attrs)
	now := time.Now()
	str := st.str
	str.mu.Lock()
	s.Span.SetAttributes(kv...)
	if !st.ended && !st.pending && len(attrs) > 0 {
		if st.suppressed {
			p.suppressed.Add(1)
		} else {
			p.publishLocked(str, st.envelope(now, &bridge.Attributes{Attributes: attrs}))
		}
	}
	str.mu.Unlock()
}

// End ends the span; the processor's OnEnd publishes its end. When End is deferred
// and a panic passes through, it records the panic as an exception event first, as
// the SDK's End does (a wrapper hides the panic from the SDK's own recover).
func (s *span) End(opts ...trace.SpanEndOption) {
	if r := recover(); r != nil {
		defer panic(r)
		if s.Span.IsRecording() {
			attrs := []attribute.KeyValue{
				attribute.String("exception.type", panicType(r)),
				attribute.String("exception.message", fmt.Sprint(r)),
			}
			if cfg := trace.NewSpanEndConfig(opts...); cfg.StackTrace() {
				attrs = append(attrs, attribute.String("exception.stacktrace", string(debug.Stack())))
			}
			s.Span.AddEvent("exception", trace.WithAttributes(attrs...))
		}
	}
	s.Span.End(opts...)
}

// panicType names the type of a panic value as the SDK does: package path and name.
func panicType(v any) string {
	t := reflect.TypeOf(v)
	if t == nil {
		return "<nil>"
	}
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// TracerProvider returns the wrapped provider, so spans started from it are wrapped.
func (s *span) TracerProvider() trace.TracerProvider { return s.tp }
