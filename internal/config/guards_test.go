package config

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestGuardKeys sets every durability and security key of the file.
func TestGuardKeys(t *testing.T) {
	file := writeFile(t, `
receivers:
  auth:
    bearer_token_env: MY_TOKEN
  otlp:
    grpc:
      tls: {cert_file: /g.pem, key_file: /gk.pem, client_ca_file: /gca.pem}
    http:
      tls: {cert_file: /h.pem, key_file: /hk.pem}
assembler:
  max_attributes_per_span: 7
  max_events_per_span: 9
persistence:
  data_dir: /data
  max_bytes: 2097152
  checkpoint_interval: 3s
memory_limiter:
  limit_percentage: 80
  check_interval: 100ms
  retry_after: 4s
limits:
  max_attribute_value_length: -1
  max_open_spans_per_stream: 50
  max_attributes_bytes: 4096
`)
	c := load(t, []string{"--config", file}, nil)
	if c.Receivers.Auth != (Auth{BearerTokenEnv: "MY_TOKEN"}) ||
		c.Receivers.OTLP.GRPC.TLS != (ServerTLS{"/g.pem", "/gk.pem", "/gca.pem"}) ||
		c.Receivers.OTLP.HTTP.TLS != (ServerTLS{CertFile: "/h.pem", KeyFile: "/hk.pem"}) ||
		c.Assembler.MaxAttributesPerSpan != 7 || c.Assembler.MaxEventsPerSpan != 9 ||
		c.Persistence != (Persistence{"/data", 2 << 20, Duration(3 * time.Second)}) ||
		c.MemoryLimiter != (MemoryLimiter{LimitPercentage: 80, CheckInterval: Duration(100 * time.Millisecond), RetryAfter: Duration(4 * time.Second)}) ||
		c.Limits != (Limits{MaxAttributeValueLength: -1, MaxOpenSpansPerStream: 50, MaxAttributesBytes: 4096}) {
		t.Fatalf("keys not applied: %+v", c)
	}
	d := Default()
	if d.Persistence.DataDir != "" || d.MemoryLimiter.LimitMiB != 0 || d.Receivers.Auth != (Auth{}) ||
		d.Limits.MaxAttributeValueLength != DefaultMaxAttributeValueLength || d.Receivers.OTLP.GRPC.TLS != (ServerTLS{}) {
		t.Fatalf("defaults: persistence, memory limiter, auth and TLS must be off: %+v", d)
	}
}

func TestGuardErrors(t *testing.T) {
	for key, yaml := range map[string]string{
		"persistence.max_bytes":             "persistence: {max_bytes: 1000}",
		"persistence.checkpoint_interval":   "persistence: {checkpoint_interval: 0s}",
		"memory_limiter.limit_mib":          "memory_limiter: {limit_mib: -1}",
		"memory_limiter.limit_percentage":   "memory_limiter: {limit_percentage: 101}",
		"memory_limiter: set":               "memory_limiter: {limit_mib: 10, limit_percentage: 10}",
		"memory_limiter.check_interval":     "memory_limiter: {check_interval: 0s}",
		"memory_limiter.retry_after":        "memory_limiter: {retry_after: 0s}",
		"receivers.auth":                    "receivers: {auth: {bearer_token_file: /f, bearer_token_env: E}}",
		"limits.max_attribute_value_length": "limits: {max_attribute_value_length: 0}",
		"limits.max_open_spans_per_stream":  "limits: {max_open_spans_per_stream: -2}",
		"limits.max_attributes_bytes":       "limits: {max_attributes_bytes: 0}",
		"assembler.max_events_per_span":     "assembler: {max_events_per_span: 0}",
	} {
		_, err := Load([]string{"--config", writeFile(t, yaml)}, env(nil), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v does not name it", yaml, err)
		}
	}
	if _, err := Load([]string{"--memory-limit-mib", "lots"}, env(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "memory-limit-mib") {
		t.Errorf("bad --memory-limit-mib: %v", err)
	}
}
