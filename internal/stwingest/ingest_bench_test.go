package stwingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stwbridge/stwbridge/bridge"
)

type discard struct{}

func (discard) Publish(bridge.Event) bool { return true }

// BenchmarkServeHTTP measures one request of the workerd sample through the handler
// (decode, order, track invocations, publish to a publisher that keeps nothing).
func BenchmarkServeHTTP(b *testing.B) {
	data := sample(b)
	events := bytes.Count(bytes.TrimSpace(data), []byte("\n")) + 1
	h := NewHandler(discard{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/stw", bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/x-ndjson")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
}
