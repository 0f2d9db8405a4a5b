package forwarder

import (
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/internal/config"
)

func TestPipelineFlushInterval(t *testing.T) {
	cfg := config.Default()
	if got := pipelineFlushInterval(cfg); got != config.DefaultBatchTimeout {
		t.Errorf("spans only: %v, want the default %v", got, config.DefaultBatchTimeout)
	}
	cfg.ForwardEvents = true
	if got := pipelineFlushInterval(cfg); got != forwardEventsFlushInterval {
		t.Errorf("forward_events with the default timeout: %v, want %v", got, forwardEventsFlushInterval)
	}
	cfg.Pipeline.Batch.Timeout = config.Duration(50 * time.Millisecond)
	if got := pipelineFlushInterval(cfg); got != 50*time.Millisecond {
		t.Errorf("forward_events with a configured timeout: %v, want it kept (50ms)", got)
	}
}
