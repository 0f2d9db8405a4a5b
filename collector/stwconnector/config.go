package stwconnector

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/collector/component"
)

// Config is the stw connector's configuration. Its keys are the forwarder's
// assembler.* keys, plus shards and storage.
type Config struct {
	// OrphanAfter is how long a span may stay open before it is exported as unfinished.
	// Default bridge.DefaultOrphanAfter (10m).
	OrphanAfter time.Duration `mapstructure:"orphan_after"`
	// StreamTimeout is how long a stream with open spans may stay silent before its
	// producer is taken for dead. Default bridge.DefaultStreamTimeout (30s).
	StreamTimeout time.Duration `mapstructure:"stream_timeout"`
	// MaxOpenSpans bounds the spans held open at once, shared evenly by the shards.
	// Default bridge.DefaultMaxOpenSpans.
	MaxOpenSpans int `mapstructure:"max_open_spans"`
	// ReorderWindow is how many events per stream are held back to restore order.
	// Default bridge.DefaultReorderWindow.
	ReorderWindow int `mapstructure:"reorder_window"`
	// SweepInterval is how often open spans are checked; 0 picks min(1s,
	// orphan_after/10, stream_timeout/10).
	SweepInterval time.Duration `mapstructure:"sweep_interval"`
	// MaxAttributesPerSpan and MaxEventsPerSpan bound what one span keeps.
	MaxAttributesPerSpan int `mapstructure:"max_attributes_per_span"`
	MaxEventsPerSpan     int `mapstructure:"max_events_per_span"`
	// Shards is how many assemblers share the streams (by stream id), so that
	// concurrent requests do not wait on one lock; 0 means GOMAXPROCS.
	Shards int `mapstructure:"shards"`
	// Storage names a storage extension (file_storage): at shutdown the open spans are
	// kept there and restored at the next start instead of being exported unfinished.
	Storage *component.ID `mapstructure:"storage"`
}

var _ component.Config = (*Config)(nil)

// maxShards bounds Shards: more would only spread max_open_spans thin.
const maxShards = 256

func createDefaultConfig() component.Config {
	return &Config{
		OrphanAfter:          bridge.DefaultOrphanAfter,
		StreamTimeout:        bridge.DefaultStreamTimeout,
		MaxOpenSpans:         bridge.DefaultMaxOpenSpans,
		ReorderWindow:        bridge.DefaultReorderWindow,
		MaxAttributesPerSpan: bridge.DefaultMaxAttributesPerSpan,
		MaxEventsPerSpan:     bridge.DefaultMaxEventsPerSpan,
	}
}

// Validate names every wrong key and what to write instead.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	positiveDur := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration such as 30s, got %s", d)
		}
	}
	positiveInt := func(key string, n int) {
		if n <= 0 {
			bad(key, "must be a positive number, got %d", n)
		}
	}
	positiveDur("orphan_after", c.OrphanAfter)
	positiveDur("stream_timeout", c.StreamTimeout)
	positiveInt("max_open_spans", c.MaxOpenSpans)
	positiveInt("reorder_window", c.ReorderWindow)
	positiveInt("max_attributes_per_span", c.MaxAttributesPerSpan)
	positiveInt("max_events_per_span", c.MaxEventsPerSpan)
	if c.SweepInterval < 0 {
		bad("sweep_interval", "must not be negative (0 picks it from orphan_after and stream_timeout), got %s", c.SweepInterval)
	}
	if c.Shards < 0 || c.Shards > maxShards {
		bad("shards", "use 1 to %d (0 means one per CPU), got %d", maxShards, c.Shards)
	}
	if c.Shards > 0 && c.MaxOpenSpans > 0 && c.MaxOpenSpans < c.Shards {
		bad("max_open_spans", "%d is fewer than shards (%d): each shard needs room for one span", c.MaxOpenSpans, c.Shards)
	}
	return errors.Join(errs...)
}

// shards returns how many assemblers to run.
func (c *Config) shards() int {
	if c.Shards > 0 {
		return c.Shards
	}
	return min(runtime.GOMAXPROCS(0), maxShards)
}

// sweepEvery returns how often the assemblers are swept, as the forwarder picks it.
func (c *Config) sweepEvery() time.Duration {
	if c.SweepInterval > 0 {
		return c.SweepInterval
	}
	d := time.Second
	for _, t := range []time.Duration{c.OrphanAfter / 10, c.StreamTimeout / 10} {
		if t > 0 && t < d {
			d = t
		}
	}
	return max(d, 10*time.Millisecond)
}

// assemblerOptions are the options of one shard's assembler.
func (c *Config) assemblerOptions(shards int) []bridge.AssemblerOption {
	return []bridge.AssemblerOption{
		bridge.WithOrphanAfter(c.OrphanAfter),
		bridge.WithStreamTimeout(c.StreamTimeout),
		bridge.WithMaxOpenSpans(max(1, (c.MaxOpenSpans+shards-1)/shards)),
		bridge.WithReorderWindow(c.ReorderWindow),
		bridge.WithMaxAttributesPerSpan(c.MaxAttributesPerSpan),
		bridge.WithMaxEventsPerSpan(c.MaxEventsPerSpan),
	}
}
