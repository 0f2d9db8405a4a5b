package stwconnector

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/collector/internal/stwcodec"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/trace"
)

// openSpansKey is the storage key of the snapshot of open spans.
const openSpansKey = "open_spans"

type spanKey struct {
	t trace.TraceID
	s trace.SpanID
}

type tracked struct {
	events []bridge.Event
	last   time.Time
}

// store keeps, beside the assemblers, the events of every span still open (as the
// forwarder's persistent queue does), so that at shutdown they can be written to a
// storage extension and fed to the assemblers again at the next start.
type store struct {
	client storage.Client
	max    int

	mu    sync.Mutex
	spans map[spanKey]*tracked

	untracked, forgotten atomic.Uint64
}

// openStore opens the storage client of the connector id on the extension ext.
func openStore(ctx context.Context, host component.Host, ext, id component.ID, maxSpans int) (*store, error) {
	e, ok := host.GetExtensions()[ext]
	if !ok {
		return nil, fmt.Errorf("stw connector: storage: extension %q not found: declare it under extensions: and list it in service.extensions", ext)
	}
	se, ok := e.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("stw connector: storage: extension %q is not a storage extension: use file_storage", ext)
	}
	client, err := se.GetClient(ctx, component.KindConnector, id, "")
	if err != nil {
		return nil, fmt.Errorf("stw connector: storage: opening a client of %q: %w", ext, err)
	}
	return &store{client: client, max: maxSpans, spans: make(map[spanKey]*tracked)}, nil
}

// restore reads and deletes the snapshot of the last shutdown.
func (s *store) restore(ctx context.Context) ([]bridge.Event, error) {
	data, err := s.client.Get(ctx, openSpansKey)
	if err != nil {
		return nil, fmt.Errorf("stw connector: storage: reading the open spans of the last shutdown: %w", err)
	}
	if len(data) == 0 {
		return nil, nil
	}
	dec, err := stwcodec.DecodeWire(data)
	if err != nil {
		return nil, fmt.Errorf("stw connector: storage: the kept open spans do not decode (delete the file_storage directory to start afresh): %w", err)
	}
	if err := s.client.Delete(ctx, openSpansKey); err != nil {
		return nil, fmt.Errorf("stw connector: storage: deleting the restored snapshot: %w", err)
	}
	return dec.Events, nil
}

// observe records events handed to the assemblers.
func (s *store) observe(events []bridge.Event) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range events {
		e := events[i]
		if !e.SpanID.IsValid() || e.Body == nil {
			continue
		}
		k := spanKey{e.TraceID, e.SpanID}
		t := s.spans[k]
		if t == nil {
			if len(s.spans) >= s.max {
				s.untracked.Add(1)
				continue
			}
			t = &tracked{}
			s.spans[k] = t
		}
		t.events = append(t.events, e)
		t.last = now
	}
}

// release forgets spans the assemblers have emitted, complete or unfinished.
func (s *store) release(spans []bridge.Span) {
	s.mu.Lock()
	for i := range spans {
		delete(s.spans, spanKey{spans[i].TraceID, spans[i].SpanID})
	}
	s.mu.Unlock()
}

// forgetIdle drops spans with no event for longer than d that the assemblers never
// emitted (their events were rejected, say).
func (s *store) forgetIdle(d time.Duration) {
	now := time.Now()
	s.mu.Lock()
	for k, t := range s.spans {
		if now.Sub(t.last) > d {
			delete(s.spans, k)
			s.forgotten.Add(1)
		}
	}
	s.mu.Unlock()
}

// events returns the events of the spans still open, in stream order.
func (s *store) events() []bridge.Event {
	s.mu.Lock()
	var events []bridge.Event
	for _, t := range s.spans {
		events = append(events, t.events...)
	}
	s.mu.Unlock()
	slices.SortStableFunc(events, func(a, b bridge.Event) int {
		if c := bytes.Compare(a.StreamID[:], b.StreamID[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Sequence, b.Sequence)
	})
	return events
}

// keep writes the open spans' events to storage.
func (s *store) keep(ctx context.Context) error {
	events := s.events()
	if len(events) == 0 {
		return nil
	}
	data, err := stwcodec.EncodeWire(events)
	if err != nil {
		return fmt.Errorf("stw connector: storage: encoding the open spans: %w", err)
	}
	if err := s.client.Set(ctx, openSpansKey, data); err != nil {
		return fmt.Errorf("stw connector: storage: writing the open spans: %w", err)
	}
	return nil
}

// reportUnfinished emits the open spans as unfinished through a fresh assembler, for
// when they could not be kept.
func (s *store) reportUnfinished(ctx context.Context, opts []bridge.AssemblerOption, next bridge.SpanConsumer) error {
	a := bridge.NewAssembler(next, opts...)
	return errors.Join(a.Consume(ctx, s.events()), a.Shutdown(ctx))
}

func (s *store) close(ctx context.Context) error { return s.client.Close(ctx) }
