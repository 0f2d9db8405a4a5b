// Package otlpexport is the OTLP/gRPC exporter of STW events, a tail of the pipeline:
// lifecycle events leave as OTLP log records, complete spans as OTLP spans, both
// encoded by package stwotlp. It retries with backoff, honours RetryInfo and partial
// success, splits large requests and reads the standard OTEL_EXPORTER_OTLP_* variables.
package otlpexport
