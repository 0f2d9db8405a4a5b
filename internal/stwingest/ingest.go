// Package stwingest receives workerd Streaming Tail Worker events over HTTP
// (POST /v1/stw, a JSON array or NDJSON) and publishes them as bridge events.
//
// A request carries the events a tail worker's tailStream handler received, serialised
// with JSON.stringify (examples/workerd/tail.js sends them). Each event is decoded on
// its own: a malformed event is rejected and counted without losing the good events
// beside it, and an event of a type this version does not know is skipped and counted
// (workerd adds event types; forward compatibility).
//
// The handler keeps, per invocation from its onset to its outcome, the invocation's
// OTel Resource (bridge.InvocationResource), which it sets on each of its events, and
// whether it was sampled: an invocation an upstream decided not to sample is dropped
// whole (counted) unless Options.ExportUnsampled.
package stwingest

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/bridge/workerd"
	"github.com/stwbridge/stwbridge/internal/options"
)

// Defaults of the handler.
const (
	// DefaultMaxBodyBytes bounds a request body, in bytes, after gzip decompression:
	// 16 MiB, room for 64 workerd events at their 256 KiB limit.
	DefaultMaxBodyBytes = 16 << 20
	// DefaultMaxErrors is how many error messages a response lists at most.
	DefaultMaxErrors = 5
	// DefaultMaxInvocations bounds the invocations whose Resource and sampling the
	// handler keeps at once, from onset to outcome; past it the oldest is forgotten.
	DefaultMaxInvocations = 65536
	// maxErrorLen bounds one error message in a response, in bytes.
	maxErrorLen = 300
	// maxResources bounds the distinct Resources shared between invocations.
	maxResources = 1024
)

// Options configure a Handler. Zero fields take the defaults above.
type Options struct {
	// MaxBodyBytes bounds the request body after decompression; larger requests get
	// 413 Request Entity Too Large. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxErrors is how many error messages a response lists. Default DefaultMaxErrors.
	MaxErrors int
	// Logger receives a debug line per request with rejected events. Default slog.Default().
	Logger *slog.Logger
	// Service names the invocations' service.name. Default: the script name.
	Service bridge.ServiceName
	// ExportUnsampled keeps the invocations an upstream did not sample (onset trace
	// flags without the sampled bit). Default false: they are dropped, counted.
	ExportUnsampled bool
	// MaxInvocations bounds the invocations tracked at once. Default
	// DefaultMaxInvocations.
	MaxInvocations int
}

// Option changes Options.
type Option func(*Options)

// WithMaxBodyBytes bounds the (decompressed) request body, in bytes.
func WithMaxBodyBytes(n int64) Option { return func(o *Options) { o.MaxBodyBytes = n } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// WithService sets how the invocations' service.name is made.
func WithService(s bridge.ServiceName) Option { return func(o *Options) { o.Service = s } }

// WithExportUnsampled keeps (true) or drops (false, the default) the invocations an
// upstream did not sample.
func WithExportUnsampled(b bool) Option { return func(o *Options) { o.ExportUnsampled = b } }

// WithMaxInvocations bounds the invocations tracked at once.
func WithMaxInvocations(n int) Option { return func(o *Options) { o.MaxInvocations = n } }

// Publisher takes decoded events; *bridge.Pipeline is one.
type Publisher interface {
	Publish(e bridge.Event) bool
}

// BatchPublisher is a Publisher that takes a request's events all at once or none of
// them (*bridge.Pipeline's PublishBatch): a refused request is retried whole.
type BatchPublisher interface {
	PublishBatch(events []bridge.Event) bool
}

// Handler is the http.Handler of POST /v1/stw.
type Handler struct {
	pub  Publisher
	opts Options

	requests, events, rejected, unknown, dropped, refused, unsampled, forgotten atomic.Uint64

	mu        sync.Mutex
	inv       map[bridge.StreamID]invocation
	order     []bridge.StreamID // onsets in arrival order, for forgetting the oldest
	resources map[resourceKey]*resource.Resource
}

// invocation is what the handler keeps of an invocation between onset and outcome.
type invocation struct {
	res       *resource.Resource
	unsampled bool
}

// resourceKey is what an invocation's Resource is made of: invocations of one script
// version share one *resource.Resource, so exporters group their spans.
type resourceKey struct{ script, version, namespace string }

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a handler that publishes what it decodes to pub, which must not
// be nil.
func NewHandler(pub Publisher, opts ...Option) *Handler {
	if pub == nil {
		panic("stwingest: NewHandler needs a Publisher (the forwarder's *bridge.Pipeline)")
	}
	o := options.Apply(opts)
	options.Positive(&o.MaxBodyBytes, DefaultMaxBodyBytes)
	options.Positive(&o.MaxErrors, DefaultMaxErrors)
	options.NonZero(&o.Logger, slog.Default())
	options.Positive(&o.MaxInvocations, DefaultMaxInvocations)
	return &Handler{pub: pub, opts: o, inv: make(map[bridge.StreamID]invocation), resources: make(map[resourceKey]*resource.Resource)}
}

// Response is the JSON answer to a request.
type Response struct {
	Accepted int `json:"accepted"`          // events published
	Rejected int `json:"rejected"`          // events that did not decode
	Unknown  int `json:"unknown"`           // events of an unknown type, skipped
	Dropped  int `json:"dropped"`           // events the pipeline refused (queue full)
	Refused  int `json:"refused,omitempty"` // events refused whole, to retry (queue full)
	// Unsampled counts events of invocations an upstream did not sample, not exported.
	Unsampled int      `json:"unsampled,omitempty"`
	Errors    []string `json:"errors,omitempty"`  // the first few error messages
	Message   string   `json:"message,omitempty"` // why the request failed as a whole
}

// ServeHTTP decodes one request of tail events.
//
// Answers: 200 with a Response when anything was accepted or there was nothing wrong;
// 400 when no event decoded and some did not; 413 over the size limit; 415 for another
// content type or encoding; 405 for methods other than POST; 503 when the pipeline
// refused every event (the sender should retry later).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: POST tail events to /v1/stw", r.Method))
		return
	}
	if msg := CheckContentType(r.Header.Get("Content-Type")); msg != "" {
		h.fail(w, http.StatusUnsupportedMediaType, msg)
		return
	}
	data, status, msg := h.readBody(w, r)
	if status != 0 {
		h.fail(w, status, msg)
		return
	}

	events, errs := workerd.DecodeStream(data)
	resp := Response{}
	for _, err := range errs {
		if errors.Is(err, workerd.ErrUnknownType) {
			resp.Unknown++
			continue
		}
		resp.Rejected++
		if len(resp.Errors) < h.opts.MaxErrors {
			resp.Errors = append(resp.Errors, truncate(err.Error(), maxErrorLen))
		}
	}
	OrderBySequence(events)
	unsampled := 0
	sampled := make([]bridge.Event, 0, len(events))
	h.mu.Lock()
	for i := range events {
		if h.track(&events[i]) {
			sampled = append(sampled, events[i])
		} else {
			unsampled++
		}
	}
	h.mu.Unlock()
	h.unsampled.Add(uint64(unsampled))
	resp.Unsampled = unsampled
	if bp, ok := h.pub.(BatchPublisher); ok {
		if bp.PublishBatch(sampled) {
			resp.Accepted = len(sampled)
		} else {
			resp.Refused = len(sampled)
		}
	} else {
		for _, e := range sampled {
			if h.pub.Publish(e) {
				resp.Accepted++
			} else {
				resp.Dropped++
			}
		}
	}
	h.refused.Add(uint64(resp.Refused))
	h.events.Add(uint64(resp.Accepted))
	h.rejected.Add(uint64(resp.Rejected))
	h.unknown.Add(uint64(resp.Unknown))
	h.dropped.Add(uint64(resp.Dropped))
	if resp.Rejected > 0 {
		h.opts.Logger.Debug("stwingest: rejected tail events",
			"rejected", resp.Rejected, "accepted", resp.Accepted, "first_error", resp.Errors[0])
	}

	code := http.StatusOK
	switch {
	case len(events) == 0 && resp.Rejected > 0:
		code = http.StatusBadRequest
		resp.Message = fmt.Sprintf("no valid tail event in the request (%d rejected): send a JSON array or NDJSON of workerd tail events, as a tailStream handler receives them", resp.Rejected)
	case resp.Accepted == 0 && resp.Dropped+resp.Refused > 0:
		// Nothing was taken, so a retry creates no duplicates.
		code = http.StatusServiceUnavailable
		resp.Message = fmt.Sprintf("the pipeline refused all %d events (queue full or shutting down): retry later", resp.Dropped+resp.Refused)
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, resp)
}

// track notes an onset's invocation and sets e's Resource from it; it reports false
// when e belongs to an invocation that is not exported (unsampled). Called with h.mu.
func (h *Handler) track(e *bridge.Event) bool {
	inv, known := h.inv[e.StreamID]
	switch b := e.Body.(type) {
	case *bridge.Onset:
		if !known {
			inv = invocation{res: h.resourceFor(b), unsampled: b.Unsampled && !h.opts.ExportUnsampled}
			h.remember(e.StreamID, inv)
			known = true
		}
	case *bridge.Outcome:
		// The last event of the invocation (a retried request may bring it again:
		// its resource is then gone, and the assembler has the onset's).
		delete(h.inv, e.StreamID)
	}
	if known {
		e.Resource = inv.res
	}
	return !inv.unsampled
}

// remember adds an invocation, forgetting the oldest ones past MaxInvocations.
func (h *Handler) remember(id bridge.StreamID, inv invocation) {
	for len(h.inv) >= h.opts.MaxInvocations && len(h.order) > 0 {
		old := h.order[0]
		h.order = h.order[1:]
		if _, ok := h.inv[old]; ok {
			delete(h.inv, old)
			h.forgotten.Add(1)
		}
	}
	if len(h.order) >= 2*h.opts.MaxInvocations {
		// Ended invocations leave their id in order; drop those.
		h.order = slices.DeleteFunc(h.order, func(id bridge.StreamID) bool { _, ok := h.inv[id]; return !ok })
	}
	h.inv[id] = inv
	h.order = append(h.order, id)
}

// resourceFor returns the Resource of an onset's invocation, shared with the other
// invocations of the same script version.
func (h *Handler) resourceFor(o *bridge.Onset) *resource.Resource {
	k := resourceKey{o.ScriptName, o.ScriptVersion, o.DispatchNamespace}
	if r, ok := h.resources[k]; ok {
		return r
	}
	if len(h.resources) >= maxResources {
		clear(h.resources)
	}
	r := bridge.InvocationResource(o, h.opts.Service)
	h.resources[k] = r
	return r
}

// readBody reads the request body within the size limit, decompressing gzip. On
// failure it returns the HTTP status and a message.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, string) {
	limit := h.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, tooLarge(limit)
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, statusOf(err, http.StatusBadRequest), "request body is not valid gzip: " + err.Error()
		}
		defer zr.Close()
		body = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("content encoding %q not supported: send the body plain or gzip", enc)
	}
	// The limit holds after decompression too, so a small gzip bomb is refused.
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, statusOf(err, http.StatusBadRequest), "reading the request body: " + err.Error()
	}
	if int64(len(data)) > limit {
		return nil, http.StatusRequestEntityTooLarge, tooLarge(limit)
	}
	return data, 0, ""
}

// statusOf is 413 for an error of http.MaxBytesReader, def otherwise.
func statusOf(err error, def int) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return def
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("request body over the limit of %d bytes: send smaller batches", limit)
}

// CheckContentType returns why the content type ct is refused, or "" when it is fine.
// JSON arrays and NDJSON are told apart by the body, so any of the JSON types will do;
// a missing type is taken as JSON.
func CheckContentType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Sprintf("content type %q does not parse: %v", ct, err)
	}
	switch mt {
	case "application/json", "application/x-ndjson", "application/ndjson",
		"application/jsonl", "application/x-jsonlines", "text/plain":
		return ""
	}
	return fmt.Sprintf("content type %q not supported: send application/json (an array) or application/x-ndjson", mt)
}

// OrderBySequence puts the events of each invocation in sequence order, keeping the
// invocations in the order they first appear.
func OrderBySequence(events []bridge.Event) {
	first := make(map[bridge.StreamID]int)
	for i, e := range events {
		if _, ok := first[e.StreamID]; !ok {
			first[e.StreamID] = i
		}
	}
	if len(first) == len(events) {
		return // one event per invocation: nothing to order
	}
	slices.SortStableFunc(events, func(a, b bridge.Event) int {
		if c := cmp.Compare(first[a.StreamID], first[b.StreamID]); c != 0 {
			return c
		}
		return cmp.Compare(a.Sequence, b.Sequence)
	})
}

func (h *Handler) fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Response{Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, resp Response) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(resp) // a Response always encodes
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Stats are the handler's counters.
type Stats struct {
	Requests uint64 // requests received
	Events   uint64 // events decoded and published
	Rejected uint64 // events that did not decode
	Unknown  uint64 // events of an unknown type, skipped (forward compatibility)
	Dropped  uint64 // events the publisher refused (queue full)
	Refused  uint64 // events of requests refused whole (BatchPublisher), answered 503
	// Unsampled counts the events of invocations not exported because an upstream
	// did not sample them.
	Unsampled uint64
	// Forgotten counts invocations whose Resource was forgotten before their outcome
	// (more than MaxInvocations at once).
	Forgotten uint64
}

// Stats returns the counters so far.
func (h *Handler) Stats() Stats {
	return Stats{
		Requests:  h.requests.Load(),
		Events:    h.events.Load(),
		Rejected:  h.rejected.Load(),
		Unknown:   h.unknown.Load(),
		Dropped:   h.dropped.Load(),
		Refused:   h.refused.Load(),
		Unsampled: h.unsampled.Load(),
		Forgotten: h.forgotten.Load(),
	}
}
