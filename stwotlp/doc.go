// Package stwotlp is the codec of STW over OTLP (docs/PROTOCOL.md): bridge events to
// OTLP log records and spans, and back.
//
// Encoding writes protobuf wire format straight from the events (AppendEvents,
// AppendSpans, SplitEvents, SplitSpans); decoding reads it (DecodeEvents) and rejects
// a bad record alone, keeping the good records beside it.
package stwotlp
