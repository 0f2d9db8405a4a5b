package forwarder

import (
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
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

func TestConsumeTimeoutCoversRetries(t *testing.T) {
	cfg := config.Default()
	cfg.Exporter.RetryOnFailure.MaxElapsedTime = config.Duration(5 * time.Minute)
	cfg.Exporter.Timeout = config.Duration(10 * time.Second)
	if got := consumeTimeout(cfg); got != 5*time.Minute+20*time.Second {
		t.Errorf("consume timeout %v, want the retries' 5m plus two attempts", got)
	}
	cfg.Exporter.RetryOnFailure.Enabled = false
	if got := consumeTimeout(cfg); got != bridge.DefaultConsumeTimeout {
		t.Errorf("without retries: %v, want the pipeline's default %v", got, bridge.DefaultConsumeTimeout)
	}
}
