package live

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
)

// Content types of GET /v1/live.
const (
	ContentTypeNDJSON = "application/x-ndjson"
	ContentTypeSSE    = "text/event-stream"
)

// What one watcher holds, which bounds its memory (docs/OPERATIONS.md): readBatch
// entries copied from the ring or the open spans, flushSize bytes of output (plus the
// line that crosses it), and with min_open at most maxPendingEntries held-back events.
const (
	// readBatch is how many ring entries (or replayed spans) a watcher copies out at once.
	readBatch = 256
	// maxPendingEntries bounds, per watcher, the events min_open holds back.
	maxPendingEntries = 4096
	// maxPendingEvents bounds the events held back for one span.
	maxPendingEvents = 64
	// flushSize is how much output a watcher gathers, at most, before writing it.
	flushSize = 64 << 10
)

// ServeHTTP streams events to one watcher until it disconnects: GET /v1/live with the
// query parameters of ParseFilter, as NDJSON (one Event per line) or, when the request
// accepts text/event-stream, as server-sent events (event: type, data: Event).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "GET /v1/live streams live events; use GET", http.StatusMethodNotAllowed)
		return
	}
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		http.Error(w, "bad /v1/live query: "+err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case <-h.done:
		http.Error(w, "stwbridge is shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	pos, rp := h.register()
	if pos == nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
		http.Error(w, fmt.Sprintf("too many live watchers (%d): retry later", h.opts.MaxWatchers), http.StatusServiceUnavailable)
		return
	}
	defer h.unregister(pos)
	if f.KeepAlive == 0 {
		f.KeepAlive = h.opts.keepAlive
	}
	sse := acceptsSSE(r.Header.Values("Accept"))
	hd := w.Header()
	if sse {
		hd.Set("Content-Type", ContentTypeSSE)
	} else {
		hd.Set("Content-Type", ContentTypeNDJSON)
	}
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // tell proxies not to buffer the stream
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	// Send the headers now: the client's request returns at once, not at the first event.
	if err := rc.Flush(); err != nil {
		slog.Error("live: the HTTP server cannot stream responses", "err", err)
		return
	}

	wt := &watcher{
		hub: h,
		w:   w,
		rc:  rc,
		f:   f,
		sse: sse,
		pos: pos,
		buf: make([]entry, readBatch),
	}
	if f.MinOpen > 0 {
		wt.pending = make(map[spanKey]*pendingSpan)
	}
	err = wt.run(r.Context(), rp)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		h.cutOff.Add(1)
		slog.Warn("live: cut off a watcher whose stream stalled", "remote", r.RemoteAddr, "write_timeout", h.opts.writeTimeout)
	case err != nil && r.Context().Err() == nil:
		slog.Debug("live: watcher gone", "remote", r.RemoteAddr, "err", err)
	}
}

// acceptsSSE reports whether an Accept header asks for server-sent events.
func acceptsSSE(accept []string) bool {
	for _, a := range accept {
		for part := range strings.SplitSeq(a, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == ContentTypeSSE {
				return true
			}
		}
	}
	return false
}

// watcher is the state of one GET /v1/live request, used by its handler goroutine only.
type watcher struct {
	hub *Hub
	w   http.ResponseWriter
	rc  *http.ResponseController
	f   Filter
	sse bool
	pos *position
	buf []entry
	out bytes.Buffer
	n   uint64 // events in out
	err error  // the first write that failed; the watcher ends on it

	pending  map[spanKey]*pendingSpan // min_open: spans held back
	queue    pendingQueue             // the same, by deadline
	nPending int                      // events held back in pending
}

// pendingSpan is a span that min_open holds back until it has been open long enough.
type pendingSpan struct {
	key      spanKey
	deadline time.Time
	entries  []entry
	index    int
}

// run streams to the watcher: the spans open when it connected (rp), then the ring.
func (wt *watcher) run(ctx context.Context, rp *replay) error {
	h := wt.hub
	if err := wt.replay(ctx, rp); err != nil {
		return err
	}
	keepAlive := time.NewTimer(wt.f.KeepAlive)
	defer keepAlive.Stop()
	release := time.NewTimer(time.Hour)
	release.Stop()
	defer release.Stop()

	for {
		got, skipped, wake := h.read(wt.pos, wt.buf)
		if skipped > 0 {
			h.skipped.Add(skipped)
			wt.writeLine(TypeSkipped, Event{Type: TypeSkipped, Time: formatTime(time.Now()), Skipped: skipped})
		}
		now := time.Now()
		for i := range got {
			wt.take(&got[i], now)
		}
		wt.releaseDue(now)
		if wt.err != nil {
			return wt.err
		}
		if wt.out.Len() > 0 {
			if err := wt.flush(); err != nil {
				return err
			}
			keepAlive.Reset(wt.f.KeepAlive)
		}
		if len(got) == len(wt.buf) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // more is waiting
		}
		if len(wt.queue) > 0 {
			release.Reset(time.Until(wt.queue[0].deadline))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.done:
			return nil
		case <-wake:
		case <-release.C:
		case <-keepAlive.C:
			if wt.sse {
				wt.out.WriteString(": keepalive\n\n")
			} else {
				wt.writeLine(TypeKeepAlive, Event{Type: TypeKeepAlive, Time: formatTime(time.Now())})
			}
			if err := wt.flush(); err != nil {
				return err
			}
			keepAlive.Reset(wt.f.KeepAlive)
		}
		release.Stop()
	}
}

// replay writes the spans open when the watcher connected, a chunk at a time: at most
// readBatch spans and flushSize bytes of output are held at once.
func (wt *watcher) replay(ctx context.Context, rp *replay) error {
	for done := false; !done; {
		var got []entry
		got, done = wt.hub.replayChunk(rp, wt.buf)
		now := time.Now()
		for i := range got {
			wt.take(&got[i], now)
		}
		clear(got) // let go of the bodies
		if wt.err != nil {
			return wt.err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wt.hub.done:
			return nil
		default:
		}
	}
	return nil
}

// take passes one event through the filters, holding it back when min_open says so.
func (wt *watcher) take(en *entry, now time.Time) {
	if !wt.f.matchScope(en) {
		return
	}
	if wt.f.MinOpen <= 0 {
		wt.emit(en)
		return
	}
	key := spanKey{en.ev.TraceID, en.ev.SpanID}
	switch en.ev.Body.(type) {
	case *bridge.SpanOpen, *bridge.Onset:
		start := en.span.start
		if start.IsZero() {
			start = now
		}
		deadline := start.Add(wt.f.MinOpen)
		if !deadline.After(now) {
			wt.emit(en)
			return
		}
		if p, ok := wt.pending[key]; ok { // a duplicate open
			wt.nPending -= len(p.entries) - 1
			clear(p.entries)
			p.entries = append(p.entries[:0], *en)
			return
		}
		if wt.nPending >= maxPendingEntries {
			wt.hub.skipped.Add(1)
			return
		}
		p := &pendingSpan{key: key, deadline: deadline, entries: []entry{*en}}
		wt.pending[key] = p
		wt.nPending++
		heap.Push(&wt.queue, p)
		return
	}
	if p, ok := wt.pending[key]; ok {
		if ends(en.ev.Body) { // ended before min_open: none of it is sent
			heap.Remove(&wt.queue, p.index)
			delete(wt.pending, key)
			wt.nPending -= len(p.entries)
			return
		}
		if len(p.entries) < maxPendingEvents && wt.nPending < maxPendingEntries {
			p.entries = append(p.entries, *en)
			wt.nPending++
		} else {
			wt.hub.skipped.Add(1)
		}
		return
	}
	// A span min_open is not holding: it was released, or opened before the hub
	// remembered it. Its events pass when it has been open long enough.
	if !en.span.known || en.span.start.IsZero() {
		return
	}
	at := now
	if ends(en.ev.Body) && !en.ev.Time.IsZero() {
		at = en.ev.Time
	}
	if at.Sub(en.span.start) >= wt.f.MinOpen {
		wt.emit(en)
	}
}

// releaseDue sends the spans min_open held back that have now been open long enough.
func (wt *watcher) releaseDue(now time.Time) {
	for len(wt.queue) > 0 && !wt.queue[0].deadline.After(now) {
		p := heap.Pop(&wt.queue).(*pendingSpan)
		delete(wt.pending, p.key)
		wt.nPending -= len(p.entries)
		for i := range p.entries {
			wt.emit(&p.entries[i])
		}
	}
}

// ends reports whether a body closes its span (for min_open).
func ends(b bridge.Body) bool {
	switch b.(type) {
	case *bridge.SpanEndData, *bridge.Outcome:
		return true
	}
	return false
}

// emit writes one event to the output, flushing it at flushSize. After a failed
// write nothing more is buffered: the watcher ends at its next check.
func (wt *watcher) emit(en *entry) {
	if wt.err != nil || !wt.f.matchContent(en) {
		return
	}
	j := toJSON(&en.ev, &en.span)
	j.Replay = en.replay
	wt.writeLine(j.Type, j)
	wt.n++
	if wt.out.Len() >= flushSize {
		wt.err = wt.flush()
	}
}

// writeLine appends one event to the output, framed as NDJSON or SSE.
func (wt *watcher) writeLine(typ string, j Event) {
	if wt.err != nil {
		return
	}
	b, err := json.Marshal(j)
	if err != nil { // cannot happen: every value is JSON-safe; keep the stream going
		slog.Error("live: encoding an event failed", "type", typ, "err", err)
		return
	}
	if wt.sse {
		wt.out.WriteString("event: ")
		wt.out.WriteString(typ)
		wt.out.WriteString("\ndata: ")
		wt.out.Write(b)
		wt.out.WriteString("\n\n")
		return
	}
	wt.out.Write(b)
	wt.out.WriteByte('\n')
}

// flush writes what is buffered, within the write timeout.
func (wt *watcher) flush() error {
	// Not every ResponseWriter has deadlines (httptest's recorder does not); then a
	// stalled watcher is only cut off by the client or the server's own timeouts.
	_ = wt.rc.SetWriteDeadline(time.Now().Add(wt.hub.opts.writeTimeout))
	_, err := wt.w.Write(wt.out.Bytes())
	if err == nil {
		err = wt.rc.Flush()
	}
	if err == nil {
		wt.hub.sent.Add(wt.n)
	}
	wt.out.Reset()
	wt.n = 0
	return err
}

// pendingQueue is a min-heap of pending spans by deadline.
type pendingQueue []*pendingSpan

func (q pendingQueue) Len() int           { return len(q) }
func (q pendingQueue) Less(i, j int) bool { return q[i].deadline.Before(q[j].deadline) }
func (q pendingQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *pendingQueue) Push(x any) {
	p := x.(*pendingSpan)
	p.index = len(*q)
	*q = append(*q, p)
}
func (q *pendingQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return p
}
