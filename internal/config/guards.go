package config

import (
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/limits"
	"github.com/stwbridge/stwbridge/internal/memlimit"
	"github.com/stwbridge/stwbridge/internal/persist"
)

// Defaults of the durability and security settings (docs/OPERATIONS.md lists them all).
const (
	// DefaultPersistenceMaxBytes bounds the persistent queue on disk, in bytes (1 GiB).
	DefaultPersistenceMaxBytes = persist.DefaultMaxBytes
	// DefaultCheckpointInterval is how often open spans are snapshotted and the
	// persistent queue cut.
	DefaultCheckpointInterval = persist.DefaultCheckpointInterval
	// DefaultMemoryCheckInterval is how often the memory limiter samples the heap.
	DefaultMemoryCheckInterval = memlimit.DefaultCheckInterval
	// DefaultMemoryRetryAfter is the delay suggested to senders refused for memory.
	DefaultMemoryRetryAfter = memlimit.DefaultRetryAfter
	// DefaultMaxAttributeValueLength is the longest attribute string value kept, in bytes.
	DefaultMaxAttributeValueLength = limits.DefaultMaxAttributeValueLength
	// DefaultMaxOpenSpansPerStream bounds the spans one producer stream holds open.
	DefaultMaxOpenSpansPerStream = bridge.DefaultMaxOpenSpansPerStream
	// DefaultMaxAttributesBytes bounds the total size of one attribute list, in bytes.
	DefaultMaxAttributesBytes = limits.DefaultMaxAttributesBytes
)

// Persistence configures the persistent queue: with a data directory, every request is
// on disk before it is acknowledged, and a restart (even after kill -9) sends what was
// not yet delivered and restores the open spans.
type Persistence struct {
	// DataDir is the queue's directory; empty keeps the queue in memory only.
	DataDir string `yaml:"data_dir"`
	// MaxBytes bounds the queue on disk; at the bound requests are refused as retryable.
	MaxBytes int64 `yaml:"max_bytes"`
	// CheckpointInterval is how often open spans are snapshotted and delivered data cut.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
}

// MemoryLimiter refuses requests (gRPC Unavailable with RetryInfo, HTTP 503 with
// Retry-After) while the heap is above a soft limit, as the Collector's memory_limiter.
// Off unless limit_mib or limit_percentage is set.
type MemoryLimiter struct {
	LimitMiB        int      `yaml:"limit_mib"`
	LimitPercentage int      `yaml:"limit_percentage"` // of the cgroup limit or total memory
	CheckInterval   Duration `yaml:"check_interval"`
	RetryAfter      Duration `yaml:"retry_after"`
}

// ServerTLS turns on TLS for a listener; with ClientCAFile, clients must present a
// certificate signed by one of its CAs (mTLS).
type ServerTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Auth requires "authorization: Bearer <token>" on both listeners (gRPC health checks,
// /metrics and /healthz excepted). The token comes from a file or an environment variable.
type Auth struct {
	BearerTokenFile string `yaml:"bearer_token_file"`
	// BearerTokenEnv names the environment variable holding the token.
	BearerTokenEnv string `yaml:"bearer_token_env"`
}

// Limits bound what one event may carry; what is cut or refused is counted.
type Limits struct {
	// MaxAttributeValueLength cuts longer string and byte values at any depth (in
	// arrays and maps), in bytes; -1: no limit.
	MaxAttributeValueLength int `yaml:"max_attribute_value_length"`
	// MaxOpenSpansPerStream bounds the spans one producer stream holds open; -1: no limit.
	MaxOpenSpansPerStream int `yaml:"max_open_spans_per_stream"`
	// MaxAttributesBytes bounds the total size of one attribute list (a span's, a span
	// event's, a link's, in one event), in bytes; the attributes past it are dropped;
	// -1: no limit.
	MaxAttributesBytes int `yaml:"max_attributes_bytes"`
}

// validateGuards checks the durability and security settings.
func (c *Config) validateGuards(bad func(key, format string, a ...any)) {
	p := c.Persistence
	if p.MaxBytes < 1<<20 {
		bad("persistence.max_bytes", "use at least 1 MiB (1048576), got %d", p.MaxBytes)
	}
	if p.CheckpointInterval <= 0 {
		bad("persistence.checkpoint_interval", "must be a positive duration such as 2s, got %s", p.CheckpointInterval.D())
	}
	m := c.MemoryLimiter
	if m.LimitMiB < 0 {
		bad("memory_limiter.limit_mib", "must not be negative (0: off), got %d", m.LimitMiB)
	}
	if m.LimitPercentage < 0 || m.LimitPercentage > 100 {
		bad("memory_limiter.limit_percentage", "use 1 to 100 (0: off), got %d", m.LimitPercentage)
	}
	if m.LimitMiB > 0 && m.LimitPercentage > 0 {
		bad("memory_limiter", "set limit_mib or limit_percentage, not both")
	}
	if m.CheckInterval < Duration(time.Millisecond) {
		bad("memory_limiter.check_interval", "use at least 1ms, got %s", m.CheckInterval.D())
	}
	if m.RetryAfter <= 0 {
		bad("memory_limiter.retry_after", "must be a positive duration such as 1s, got %s", m.RetryAfter.D())
	}
	// TLS files are checked when they are loaded (forwarder.New), where a missing or
	// mismatched file is found too.
	if a := c.Receivers.Auth; a.BearerTokenFile != "" && a.BearerTokenEnv != "" {
		bad("receivers.auth", "set bearer_token_file or bearer_token_env, not both")
	}
	if n := c.Limits.MaxAttributeValueLength; n == 0 || n < -1 {
		bad("limits.max_attribute_value_length", "must be a positive number of bytes, or -1 for no limit, got %d", n)
	}
	if n := c.Limits.MaxOpenSpansPerStream; n == 0 || n < -1 {
		bad("limits.max_open_spans_per_stream", "must be a positive number, or -1 for no limit, got %d", n)
	}
	if n := c.Limits.MaxAttributesBytes; n == 0 || n < -1 {
		bad("limits.max_attributes_bytes", "must be a positive number of bytes, or -1 for no limit, got %d", n)
	}
}
