// Package stwotlp is the codec of STW over OTLP (docs/PROTOCOL.md): bridge events to
// OTLP log records and spans, and back.
//
// There is one encoder and one decoder. Encoding writes protobuf wire format straight
// from the events or spans (AppendEvents, AppendSpans; SplitEvents and SplitSpans for
// requests of bounded size; EventsRequest and SpansRequest for a generated gRPC
// client). Decoding (DecodeEvents, or DecodeEventsRequest for a request already
// unmarshalled, and DecodeSpans) rejects a bad record alone and keeps the good
// records beside it; records outside the stw.* namespace pass through untouched.
//
// The tests keep a second encoder that builds the OTLP messages field by field, and
// check the wire encoder against it on fixed cases, random batches and fuzzed input.
package stwotlp
