// Package stwingest receives workerd Streaming Tail Worker events over HTTP
// (POST /v1/stw, a JSON array or NDJSON) and publishes them as bridge events.
package stwingest

// Pinned API (issue 6); the implementation replaces this file.

import (
	"net/http"

	"github.com/stwbridge/stwbridge/bridge"
)

// Publisher takes decoded events; *bridge.Pipeline is one.
type Publisher interface {
	Publish(e bridge.Event) bool
}

// Handler is the http.Handler of POST /v1/stw.
type Handler struct{}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a handler that publishes what it decodes to pub.
func NewHandler(pub Publisher) *Handler { panic("not implemented yet") }

// ServeHTTP decodes one request of tail events.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { panic("not implemented yet") }

// Stats are the handler's counters.
type Stats struct {
	Requests uint64 // requests received
	Events   uint64 // events decoded and published
	Rejected uint64 // events that did not decode
	Unknown  uint64 // events of an unknown type, skipped (forward compatibility)
	Dropped  uint64 // events the publisher refused (queue full)
}

// Stats returns the counters so far.
func (h *Handler) Stats() Stats { panic("not implemented yet") }
