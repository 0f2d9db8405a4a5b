package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
)

// TestGeneratorStreams checks that a generated trace is a valid stream: sequence from
// 0 without gaps, and that the assembler rebuilds every span from it.
func TestGeneratorStreams(t *testing.T) {
	gen := newGenerator(1, 4, false)
	r := gen.request(time.Now(), time.Millisecond)
	events := append(append([]bridge.Event{}, r.opens...), r.ends...)
	for i, e := range events {
		if e.Sequence != uint64(i) || e.StreamID != events[0].StreamID {
			t.Fatalf("event %d: sequence %d stream %v", i, e.Sequence, e.StreamID)
		}
	}
	var got []bridge.Span
	a := bridge.NewAssembler(bridge.SpanConsumerFunc(func(_ context.Context, s []bridge.Span) error {
		got = append(got, s...)
		return nil
	}))
	if err := a.Consume(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || len(r.spans) != 4 {
		t.Fatalf("assembled %d spans from the stream, generator made %d", len(got), len(r.spans))
	}
	if got[0].Parent.IsValid() == got[len(got)-1].Parent.IsValid() && got[0].Name == got[len(got)-1].Name {
		t.Errorf("spans look alike: %+v", got)
	}
}

// TestSendToSink runs the sink and sends both modes to it, as scripts/loadbench.sh does.
func TestSendToSink(t *testing.T) {
	addr, stop := startSink(t)
	for _, mode := range []string{"spans", "events", "complete"} {
		var out bytes.Buffer
		err := runSend(context.Background(), []string{"--endpoint", addr, "--mode", mode, "--spans", "200", "--rate", "0", "--batch", "40", "--duration", "0"}, &out, os.Stderr)
		if err != nil || !strings.Contains(out.String(), "sent 200 spans") {
			t.Fatalf("%s: %v %s", mode, err, out.String())
		}
	}
	// A fixed rate is kept: 2000 spans/s for 300ms.
	var out bytes.Buffer
	if err := runSend(context.Background(), []string{"--endpoint", addr, "--mode", "spans", "--rate", "2000", "--duration", "300ms"}, &out, os.Stderr); err != nil {
		t.Fatal(err)
	}
	final := stop()
	for _, want := range []string{"logs=600", "opens=200", "p99_ms="} { // events: 2 records a span, complete: 1
		if !strings.Contains(final, want) {
			t.Errorf("sink report %q lacks %q", final, want)
		}
	}
	if !strings.Contains(out.String(), "sent ") {
		t.Fatalf("rate run: %s", out.String())
	}
	var spans int
	for _, f := range strings.Fields(final) {
		if v, ok := strings.CutPrefix(f, "spans="); ok {
			spans = atoi(v)
		}
	}
	// The rate is a ceiling: a busy machine may send fewer, never more.
	if spans <= 200 || spans > 200+700 {
		t.Errorf("sink counted %d spans: want 200 plus at most about 600 at 2000 spans/s for 300ms", spans)
	}
}

// startSink runs `stwload sink` with args; stop ends it and returns its final report.
func startSink(t *testing.T, args ...string) (addr string, stop func() string) {
	t.Helper()
	dir := t.TempDir()
	addrFile, statsFile := filepath.Join(dir, "addr"), filepath.Join(dir, "stats")
	ctx, cancel := context.WithCancel(context.Background())
	var sinkOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runSink(ctx, append([]string{"--addr-file", addrFile, "--stats-file", statsFile}, args...), &sinkOut, os.Stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		b, _ := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("the sink did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return addr, func() string {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return sinkOut.String()
	}
}

// TestSinkDiscard: with --discard the sink answers each export, traces and logs,
// and counts requests without decoding them.
func TestSinkDiscard(t *testing.T) {
	addr, stop := startSink(t, "--discard")
	for _, mode := range []string{"spans", "complete"} {
		var out bytes.Buffer
		err := runSend(context.Background(), []string{"--endpoint", addr, "--mode", mode, "--spans", "200", "--rate", "0", "--batch", "40", "--duration", "0"}, &out, os.Stderr)
		if err != nil || !strings.Contains(out.String(), "sent 200 spans") || !strings.Contains(out.String(), "failed 0") {
			t.Fatalf("%s: %v %s", mode, err, out.String())
		}
	}
	if final := stop(); !strings.Contains(final, "spans=0 ") || !strings.Contains(final, "logs=0 ") || !strings.Contains(final, "requests=10") {
		t.Errorf("sink report %q: want 10 requests counted, nothing decoded", final)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestBadArguments(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 {
		t.Errorf("no command: exit %d", code)
	}
	if code := run([]string{"send", "--mode", "bogus", "--spans", "1"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--mode") {
		t.Errorf("bad mode: exit %d, %s", code, errb.String())
	}
	if code := run([]string{"fly"}, &out, &errb); code != 1 {
		t.Errorf("unknown command: exit %d", code)
	}
}

// The spec shape makes traces of one span, the OpenTelemetry benchmark's, which a
// protocol 1.1 producer sends alone in its stream; an unknown shape is an error.
func TestSpecShape(t *testing.T) {
	r := newGenerator(3, 4, true).request(time.Now(), time.Millisecond)
	if len(r.spans) != 1 || len(r.completes) != 1 {
		t.Fatalf("%d spans, %d stw.span records; want one of each", len(r.spans), len(r.completes))
	}
	sp := r.spans[0]
	if sp.Name != "operation" || len(sp.Attributes) != 10 || sp.Attributes[0].Value.AsString() != strings.Repeat("a", 20) {
		t.Fatalf("span %q with %v", sp.Name, sp.Attributes)
	}
	c := r.completes[0]
	if body := c.Body.(*bridge.CompleteSpan); !body.Alone || c.StreamID != bridge.AloneStreamID(c.TraceID, c.SpanID) || c.Sequence != 0 {
		t.Fatalf("the record is not alone in its stream: %+v", c)
	}
	err := runSend(context.Background(), []string{"--shape", "tiny"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--shape") {
		t.Fatalf("unknown shape: %v", err)
	}
}
