package stwotlp

import (
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// This file writes whole requests: items (events or spans) grouped by resource and
// scope, one ResourceLogs/ResourceSpans per resource and one ScopeLogs/ScopeSpans per
// scope in order of first use, items in their order within a group. The two signals
// frame their items alike (same field numbers), so one encoder serves both.
//
// Protobuf strings must be valid UTF-8 (proto.Marshal and every receiver refuse a
// request otherwise), so a string that is not is written with each invalid sequence
// replaced by U+FFFD: one bad attribute costs neither its event nor the request.

// AppendEvents appends to buf the events with a body as one ExportLogsServiceRequest in
// protobuf wire format, one LogRecord per event (docs/PROTOCOL.md). Events whose
// resources and scopes are equal, whether or not their pointers are, share a group.
func AppendEvents(buf []byte, events []bridge.Event) []byte {
	buf, _ = logsCodec.split(buf, events, 0, nil, false)
	return buf
}

// AppendSpans appends to buf complete spans as one ExportTraceServiceRequest in
// protobuf wire format, grouped as AppendEvents groups events. Unfinished spans get
// status Error and stw.unfinished=true.
func AppendSpans(buf []byte, spans []bridge.Span) []byte {
	buf, _ = spansCodec.split(buf, spans, 0, nil, false)
	return buf
}

// A Part is one request of a split encoding: buf[Start:End] of its buffer, holding
// Items records or spans.
type Part struct{ Start, End, Items int }

// SplitEvents encodes the events i with a body for which keep(i) is true (all of them
// when keep is nil) as AppendEvents does, but as requests of at most limit bytes each;
// a record too big on its own goes alone. It appends the requests to buf (which may
// be nil; a caller that reuses buffers passes one with len 0) and returns it with the
// requests' places in it; no parts when no event was kept.
func SplitEvents(buf []byte, events []bridge.Event, limit int, keep func(i int) bool) ([]byte, []Part) {
	return logsCodec.split(buf, events, limit, keep, true)
}

// SplitSpans is SplitEvents for spans.
func SplitSpans(buf []byte, spans []bridge.Span, limit int) ([]byte, []Part) {
	return spansCodec.split(buf, spans, limit, nil, true)
}

// EventsRequest is AppendEvents as a message, for callers that hand requests to a
// generated gRPC client.
func EventsRequest(events []bridge.Event) *collogspb.ExportLogsServiceRequest {
	req := &collogspb.ExportLogsServiceRequest{}
	mustUnmarshal(AppendEvents(nil, events), req)
	return req
}

// SpansRequest is AppendSpans as a message, as EventsRequest.
func SpansRequest(spans []bridge.Span) *coltracepb.ExportTraceServiceRequest {
	req := &coltracepb.ExportTraceServiceRequest{}
	mustUnmarshal(AppendSpans(nil, spans), req)
	return req
}

// mustUnmarshal decodes what the encoder wrote: an error there is a bug of the
// encoder, not bad input.
func mustUnmarshal(b []byte, m proto.Message) {
	if err := proto.Unmarshal(b, m); err != nil {
		panic("stwotlp: the encoder wrote a request proto.Unmarshal refuses: " + err.Error())
	}
}

// codec is what the request encoder needs of one signal's items.
type codec[T any] struct {
	// group returns the item's resource and scope; ok is false for an item with
	// nothing to encode (an event without a body).
	group func(x *T) (r *resource.Resource, s *instrumentation.Scope, ok bool)
	// append appends the item as field 2 of its ScopeLogs or ScopeSpans.
	append func(b []byte, x *T) []byte
	pool   sync.Pool // of *encoder[T]
}

var (
	logsCodec = &codec[bridge.Event]{
		group: func(e *bridge.Event) (*resource.Resource, *instrumentation.Scope, bool) {
			return e.Resource, e.Scope, e.Body != nil
		},
		append: appendRecordWire,
	}
	spansCodec = &codec[bridge.Span]{
		group: func(s *bridge.Span) (*resource.Resource, *instrumentation.Scope, bool) {
			return s.Resource, s.Scope, true
		},
		append: appendSpanWire,
	}
)

// encoder is one request encoding's scratch, kept between uses (through codec.pool)
// so that encoding allocates little besides the output.
type encoder[T any] struct {
	resources map[groupKey]int
	scopes    map[groupKey]int
	res       []resGroup
	scp       []scopeGroup
	next      []int32 // per item: the next item of its scope group, -1 at the end
	parts     []Part
	// hint is the bytes per item of the last split encoding, for sizing the next.
	hint int
}

type resGroup struct {
	res    *resource.Resource
	scopes []int // indexes in encoder.scp
}

type scopeGroup struct {
	scope       *instrumentation.Scope
	first, last int32
}

// split encodes the items i for which keep(i) (all when keep is nil) onto buf, as one
// request when limit is 0, else as requests of at most limit bytes each; with a nil
// buf it allocates one sized from the last call. It returns the parts when asked.
func (c *codec[T]) split(buf []byte, items []T, limit int, keep func(int) bool, parts bool) ([]byte, []Part) {
	enc, _ := c.pool.Get().(*encoder[T])
	if enc == nil {
		enc = &encoder[T]{resources: make(map[groupKey]int), scopes: make(map[groupKey]int)}
	}
	defer c.pool.Put(enc)
	defer enc.release()
	n := enc.group(c, items, keep)
	if n == 0 {
		return buf, nil
	}
	if enc.hint == 0 {
		enc.hint = 256
	}
	start := len(buf)
	buf = slices.Grow(buf, n*enc.hint+256)
	buf = enc.write(c, buf, items, limit)
	// Room for an eighth more next time: growing the buffer copies it all.
	per := (len(buf) - start) / n
	enc.hint = per + per/8 + 1
	if !parts {
		return buf, nil
	}
	return buf, append([]Part(nil), enc.parts...)
}

// release drops the pointers the encoder held, keeping its slices' capacity.
func (enc *encoder[T]) release() {
	clear(enc.resources)
	clear(enc.scopes)
	for i := range enc.res {
		enc.res[i] = resGroup{scopes: enc.res[i].scopes[:0]}
	}
	clear(enc.scp)
	enc.res, enc.scp, enc.parts = enc.res[:0], enc.scp[:0], enc.parts[:0]
}

// group groups the items to encode by resource and scope and returns how many there are.
func (enc *encoder[T]) group(c *codec[T], items []T, keep func(int) bool) (n int) {
	if cap(enc.next) < len(items) {
		enc.next = make([]int32, len(items))
	}
	enc.next = enc.next[:len(items)]
	var (
		lastRes   *resource.Resource
		lastScope *instrumentation.Scope
		last      = -1
	)
	for i := range items {
		r, s, ok := c.group(&items[i])
		if !ok || (keep != nil && !keep(i)) {
			continue
		}
		if last < 0 || r != lastRes || s != lastScope {
			key := makeGroupKey(r, s)
			sg, found := enc.scopes[key]
			if !found {
				rg, found := enc.resources[key.resourceKey()]
				if !found {
					rg = len(enc.res)
					enc.resources[key.resourceKey()] = rg
					if len(enc.res) < cap(enc.res) {
						enc.res = enc.res[:rg+1]
						enc.res[rg].res, enc.res[rg].scopes = r, enc.res[rg].scopes[:0]
					} else {
						enc.res = append(enc.res, resGroup{res: r})
					}
				}
				sg = len(enc.scp)
				enc.scopes[key] = sg
				enc.scp = append(enc.scp, scopeGroup{scope: s, first: -1, last: -1})
				enc.res[rg].scopes = append(enc.res[rg].scopes, sg)
			}
			last, lastRes, lastScope = sg, r, s
		}
		g := &enc.scp[last]
		enc.next[i] = -1
		if g.last < 0 {
			g.first = int32(i)
		} else {
			enc.next[g.last] = int32(i)
		}
		g.last = int32(i)
		n++
	}
	return n
}

// write appends the grouped items to b as requests of at most limit bytes each (one
// request when limit is 0), recording their places in enc.parts.
func (enc *encoder[T]) write(c *codec[T], b []byte, items []T, limit int) []byte {
	cur := Part{Start: len(b)}
	for _, rg := range enc.res {
		var resTail int // what the resource adds after its scope groups
		if rg.res != nil {
			resTail = stringFieldSize(rg.res.SchemaURL())
		}
		resStart, resItems := len(b), 0 // where the group starts in the request, its items there
		var rm int
		b, rm = beginResource(b, rg.res)
		for _, si := range rg.scopes {
			sg := &enc.scp[si]
			var tail int
			if sg.scope != nil {
				tail = stringFieldSize(sg.scope.SchemaURL)
			}
			// Two lengths may widen by up to 4 bytes each when the groups close.
			tail += resTail + 8
			scopeStart, scopeItems := len(b), 0
			var sm int
			b, sm = beginScope(b, sg.scope)
			for i := sg.first; i >= 0; i = enc.next[i] {
				pos := len(b)
				b = c.append(b, &items[i])
				if limit > 0 && cur.Items > 0 && len(b)-cur.Start+tail > limit {
					// The item does not fit: close this request before it (without the
					// groups it opened and left empty), and write it again at the start
					// of the next one.
					switch {
					case resItems == 0:
						b = b[:resStart]
					case scopeItems == 0:
						b = endResource(b[:scopeStart], rm, rg.res)
					default:
						b = endResource(endScope(b[:pos], sm, sg.scope), rm, rg.res)
					}
					cur.End = len(b)
					enc.parts = append(enc.parts, cur)
					cur = Part{Start: len(b)}
					resStart, resItems, scopeStart, scopeItems = len(b), 0, len(b), 0
					b, rm = beginResource(b, rg.res)
					b, sm = beginScope(b, sg.scope)
					b = c.append(b, &items[i])
				}
				cur.Items++
				resItems++
				scopeItems++
			}
			b = endScope(b, sm, sg.scope)
		}
		b = endResource(b, rm, rg.res)
	}
	if cur.Items > 0 {
		cur.End = len(b)
		enc.parts = append(enc.parts, cur)
	}
	return b
}

// beginResource opens a ResourceLogs or ResourceSpans (field 1 of the request) and
// writes its resource; endResource, given the returned mark, closes it.
func beginResource(b []byte, r *resource.Resource) ([]byte, int) {
	b, m := beginMsg(b, 1)
	if r != nil {
		var rm int
		b, rm = beginMsg(b, 1)
		b = appendKeyValues(b, 1, r.Attributes())
		b = endMsg(b, rm)
	}
	return b, m
}

func endResource(b []byte, m int, r *resource.Resource) []byte {
	if r != nil {
		b = appendString(b, 3, r.SchemaURL())
	}
	return endMsg(b, m)
}

// beginScope opens a ScopeLogs or ScopeSpans (field 2 of its resource group) and
// writes its scope.
func beginScope(b []byte, s *instrumentation.Scope) ([]byte, int) {
	b, m := beginMsg(b, 2)
	if s != nil {
		var sm int
		b, sm = beginMsg(b, 1)
		b = appendString(b, 1, s.Name)
		b = appendString(b, 2, s.Version)
		b = appendKeyValues(b, 3, s.Attributes.ToSlice())
		b = endMsg(b, sm)
	}
	return b, m
}

func endScope(b []byte, m int, s *instrumentation.Scope) []byte {
	if s != nil {
		b = appendString(b, 3, s.SchemaURL)
	}
	return endMsg(b, m)
}

// validUTF8 is s, or, when s is not valid UTF-8, s with each invalid sequence
// replaced by U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// groupKey identifies a resource and scope by content, so that items whose producers
// hold equal but distinct pointers still share one group.
type groupKey struct {
	hasResource bool
	resSchema   string
	resAttrs    attribute.Distinct
	hasScope    bool
	name        string
	version     string
	scopeSchema string
	scopeAttrs  attribute.Distinct
}

func makeGroupKey(r *resource.Resource, s *instrumentation.Scope) groupKey {
	k := groupKey{hasResource: r != nil, hasScope: s != nil}
	if r != nil {
		k.resSchema, k.resAttrs = r.SchemaURL(), r.Equivalent()
	}
	if s != nil {
		k.name, k.version, k.scopeSchema, k.scopeAttrs = s.Name, s.Version, s.SchemaURL, s.Attributes.Equivalent()
	}
	return k
}

// resourceKey is the resource part of a groupKey.
func (k groupKey) resourceKey() groupKey {
	return groupKey{hasResource: k.hasResource, resSchema: k.resSchema, resAttrs: k.resAttrs}
}
