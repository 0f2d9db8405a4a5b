package processor

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/bridge"
)

// Every option and environment variable resolves as documented.
func TestOptionsResolve(t *testing.T) {
	defaults := Options{
		MaxQueueEvents:          DefaultMaxQueueEvents,
		MaxQueueBytes:           DefaultMaxQueueBytes,
		BatchSize:               DefaultBatchSize,
		FlushInterval:           DefaultFlushInterval,
		ExportTimeout:           DefaultExportTimeout,
		ScanInterval:            DefaultScanInterval,
		HeartbeatInterval:       DefaultHeartbeatInterval,
		AnnounceDelay:           DefaultAnnounceDelay,
		MaxAttributes:           DefaultMaxAttributes,
		MaxAttributeValueLength: DefaultMaxAttributeValueLength,
	}
	with := func(f func(*Options)) Options { o := defaults; f(&o); return o }

	tests := []struct {
		name string
		env  map[string]string
		opts []Option
		want Options
		warn string // a warning the logger must get
	}{
		{name: "defaults", want: defaults},
		{name: "queue events", opts: []Option{WithMaxQueueEvents(2 * DefaultMaxQueueEvents)}, want: with(func(o *Options) {
			o.MaxQueueEvents, o.MaxQueueBytes = 2*DefaultMaxQueueEvents, 2*DefaultMaxQueueBytes
		})},
		{name: "small queue keeps the byte bound", opts: []Option{WithMaxQueueEvents(100)}, want: with(func(o *Options) {
			o.MaxQueueEvents, o.BatchSize = 100, 100
		})},
		{name: "queue bytes", opts: []Option{WithMaxQueueBytes(1 << 10)}, want: with(func(o *Options) { o.MaxQueueBytes = 1 << 10 })},
		{name: "env queue size", env: map[string]string{envMaxQueueSize: "24576"}, want: with(func(o *Options) {
			o.MaxQueueEvents, o.MaxQueueBytes = 24576, 4*DefaultMaxQueueBytes
		})},
		{name: "env queue size with bytes set", env: map[string]string{envMaxQueueSize: "24576"}, opts: []Option{WithMaxQueueBytes(5000)},
			want: with(func(o *Options) { o.MaxQueueEvents, o.MaxQueueBytes = 24576, 5000 })},
		{name: "option beats env queue size", env: map[string]string{envMaxQueueSize: "24576"}, opts: []Option{WithMaxQueueEvents(1000)},
			want: with(func(o *Options) { o.MaxQueueEvents = 1000 })},
		{name: "batch size", opts: []Option{WithBatchSize(64)}, want: with(func(o *Options) { o.BatchSize = 64 })},
		{name: "env batch size", env: map[string]string{envMaxExportBatch: "32"}, want: with(func(o *Options) { o.BatchSize = 32 })},
		{name: "option beats env batch size", env: map[string]string{envMaxExportBatch: "32"}, opts: []Option{WithBatchSize(16)},
			want: with(func(o *Options) { o.BatchSize = 16 })},
		{name: "batch size at most queue size", opts: []Option{WithMaxQueueEvents(10), WithBatchSize(64)},
			want: with(func(o *Options) { o.MaxQueueEvents, o.BatchSize = 10, 10 })},
		{name: "flush interval", opts: []Option{WithFlushInterval(time.Second)}, want: with(func(o *Options) { o.FlushInterval, o.AnnounceDelay = time.Second, time.Second })},
		{name: "env schedule delay", env: map[string]string{envScheduleDelay: "250"}, want: with(func(o *Options) { o.FlushInterval, o.AnnounceDelay = 250*time.Millisecond, 250*time.Millisecond })},
		{name: "option beats env schedule delay", env: map[string]string{envScheduleDelay: "250"}, opts: []Option{WithFlushInterval(time.Second)},
			want: with(func(o *Options) { o.FlushInterval, o.AnnounceDelay = time.Second, time.Second })},
		{name: "export timeout", opts: []Option{WithExportTimeout(time.Second)}, want: with(func(o *Options) { o.ExportTimeout = time.Second })},
		{name: "env export timeout", env: map[string]string{envExportTimeout: "1500"}, want: with(func(o *Options) { o.ExportTimeout = 1500 * time.Millisecond })},
		{name: "option beats env export timeout", env: map[string]string{envExportTimeout: "1500"}, opts: []Option{WithExportTimeout(time.Second)},
			want: with(func(o *Options) { o.ExportTimeout = time.Second })},
		{name: "scan interval", opts: []Option{WithScanInterval(time.Second)}, want: with(func(o *Options) { o.ScanInterval = time.Second })},
		{name: "scan off", opts: []Option{WithScanInterval(-1)}, want: with(func(o *Options) { o.ScanInterval = -1 })},
		{name: "heartbeat interval", opts: []Option{WithHeartbeatInterval(time.Minute)}, want: with(func(o *Options) { o.HeartbeatInterval = time.Minute })},
		{name: "heartbeats off", opts: []Option{WithHeartbeatInterval(-1)}, want: with(func(o *Options) { o.HeartbeatInterval = -1 })},
		{name: "announce delay", opts: []Option{WithAnnounceDelay(time.Second)}, want: with(func(o *Options) { o.AnnounceDelay = time.Second })},
		{name: "announce at once", opts: []Option{WithAnnounceDelay(0)}, want: with(func(o *Options) { o.AnnounceDelay = -1 })},
		{name: "env announce delay", env: map[string]string{envAnnounceDelay: "20"}, want: with(func(o *Options) { o.AnnounceDelay = 20 * time.Millisecond })},
		{name: "env announce at once", env: map[string]string{envAnnounceDelay: "0"}, want: with(func(o *Options) { o.AnnounceDelay = -1 })},
		{name: "option beats env announce delay", env: map[string]string{envAnnounceDelay: "20"}, opts: []Option{WithAnnounceDelay(time.Second)},
			want: with(func(o *Options) { o.AnnounceDelay = time.Second })},
		{name: "bad env announce delay", env: map[string]string{envAnnounceDelay: "soon"}, want: defaults, warn: envAnnounceDelay},
		{name: "max attributes", opts: []Option{WithMaxAttributes(3)}, want: with(func(o *Options) { o.MaxAttributes = 3 })},
		{name: "no attribute limits", opts: []Option{WithMaxAttributes(-1), WithMaxAttributeValueLength(-1)},
			want: with(func(o *Options) { o.MaxAttributes, o.MaxAttributeValueLength = -1, -1 })},
		{name: "max value length", opts: []Option{WithMaxAttributeValueLength(10)}, want: with(func(o *Options) { o.MaxAttributeValueLength = 10 })},
		{name: "bad env queue size", env: map[string]string{envMaxQueueSize: "lots"}, want: defaults, warn: envMaxQueueSize},
		{name: "bad env batch size", env: map[string]string{envMaxExportBatch: "-3"}, want: defaults, warn: envMaxExportBatch},
		{name: "bad env schedule delay", env: map[string]string{envScheduleDelay: "1s"}, want: defaults, warn: envScheduleDelay},
		{name: "bad env export timeout", env: map[string]string{envExportTimeout: "0"}, want: defaults, warn: envExportTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{envMaxQueueSize, envScheduleDelay, envMaxExportBatch, envExportTimeout, envAnnounceDelay} {
				t.Setenv(name, tt.env[name])
			}
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			p := New(&recorder{}, append(tt.opts, WithLogger(log))...)
			defer func() { _ = p.Shutdown(context.Background()) }()
			got := p.Options()
			if got.Logger != log {
				t.Fatal("WithLogger not honoured")
			}
			got.Logger = nil
			if got != tt.want {
				t.Fatalf("options\n got %+v\nwant %+v", got, tt.want)
			}
			if tt.warn != "" && !strings.Contains(logs.String(), tt.warn) {
				t.Fatalf("no warning naming %s; log: %q", tt.warn, logs.String())
			}
			if tt.warn == "" && logs.Len() > 0 {
				t.Fatalf("unexpected log: %s", logs.String())
			}
		})
	}

}

// The intervals drive one background loop: its period and what runs each tick.
func TestBackgroundLoopPeriods(t *testing.T) {
	tests := []struct {
		scan, hb          time.Duration
		period            time.Duration
		scanEvery, hbTick uint64
	}{
		{scan: 200 * time.Millisecond, hb: 5 * time.Second, period: 200 * time.Millisecond, scanEvery: 1, hbTick: 25},
		{scan: time.Second, hb: 100 * time.Millisecond, period: 100 * time.Millisecond, scanEvery: 10, hbTick: 1},
		{scan: -1, hb: time.Second, period: time.Second, scanEvery: 0, hbTick: 1},
		{scan: time.Second, hb: -1, period: time.Second, scanEvery: 1, hbTick: 0},
		{scan: -1, hb: -1},
	}
	for _, tt := range tests {
		p := New(&recorder{}, WithScanInterval(tt.scan), WithHeartbeatInterval(tt.hb))
		if p.period != tt.period || p.scanEvery != tt.scanEvery || p.hbTicks != tt.hbTick {
			t.Errorf("scan %v, heartbeat %v: period %v scanEvery %d hbTicks %d, want %v %d %d",
				tt.scan, tt.hb, p.period, p.scanEvery, p.hbTicks, tt.period, tt.scanEvery, tt.hbTick)
		}
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// The pipeline options reach the pipeline: batches, flush interval, byte bound and
// export timeout each change what the sink sees.
func TestPipelineOptionsHonoured(t *testing.T) {
	spans := func(t *testing.T, p *Processor, n int) {
		sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
		for i := 0; i < n; i++ {
			_, s := sdk.Tracer("t").Start(context.Background(), "s")
			s.End()
		}
	}
	t.Run("batch size and flush interval", func(t *testing.T) {
		for _, viaEnv := range []bool{false, true} {
			rec := &recorder{}
			opts := []Option{WithBatchSize(4), WithFlushInterval(time.Hour)}
			if viaEnv {
				t.Setenv(envMaxExportBatch, "4")
				t.Setenv(envScheduleDelay, "3600000")
				opts = nil
			}
			p := New(rec, append(opts, WithAnnounceDelay(0))...)
			spans(t, p, 1) // 3 events: less than a batch, so they wait for the hour
			time.Sleep(50 * time.Millisecond)
			if got := len(rec.all()); got != 0 {
				t.Fatalf("%d events delivered before the batch filled or the interval passed (env %v)", got, viaEnv)
			}
			spans(t, p, 1) // a batch is full now
			rec.waitFor(t, "the full batch", func(evs []bridge.Event) bool { return len(evs) >= 4 })
			_ = p.Shutdown(context.Background())
			rec.mu.Lock()
			batches := rec.batches
			rec.mu.Unlock()
			for _, n := range batches {
				if n > 4 {
					t.Fatalf("batch of %d events, want at most 4 (env %v)", n, viaEnv)
				}
			}
		}
	})
	t.Run("queue bytes", func(t *testing.T) {
		rec := &recorder{block: make(chan struct{})}
		p := New(rec, WithAnnounceDelay(0), WithMaxQueueBytes(2000), WithFlushInterval(time.Millisecond))
		spans(t, p, 20)
		if p.Stats().Dropped == 0 {
			t.Fatal("a 2000-byte queue took 60 events")
		}
		close(rec.block)
		_ = p.Shutdown(context.Background())
	})
	t.Run("queue events via env", func(t *testing.T) {
		t.Setenv(envMaxQueueSize, "10")
		rec := &recorder{block: make(chan struct{})}
		p := New(rec, WithAnnounceDelay(0), WithFlushInterval(time.Millisecond))
		spans(t, p, 20)
		if st := p.Stats(); st.Dropped == 0 || st.Pipeline.Published > 10 {
			t.Fatalf("a 10-event queue: %+v", st)
		}
		close(rec.block)
		_ = p.Shutdown(context.Background())
	})
	t.Run("export timeout", func(t *testing.T) {
		for _, viaEnv := range []bool{false, true} {
			rec := &recorder{block: make(chan struct{})}
			opts := []Option{WithExportTimeout(20 * time.Millisecond), WithFlushInterval(time.Millisecond)}
			if viaEnv {
				t.Setenv(envExportTimeout, "20")
				opts = opts[1:]
			}
			p := New(rec, append(opts, WithAnnounceDelay(0), WithLogger(slog.New(slog.DiscardHandler)))...)
			spans(t, p, 1)
			deadline := time.Now().Add(10 * time.Second)
			for p.Stats().Pipeline.Failed == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("a blocked Consume was not cut by the export timeout (env %v)", viaEnv)
				}
				time.Sleep(time.Millisecond)
			}
			close(rec.block)
			_ = p.Shutdown(context.Background())
		}
	})
}

// Attribute limits apply to every event and are counted.
func TestAttributeLimits(t *testing.T) {
	p, sdk, rec := setup(t, WithMaxAttributes(3), WithMaxAttributeValueLength(5))
	attrs := []attribute.KeyValue{
		attribute.String("a", "short"),
		attribute.String("b", "héllo wörld"),
		attribute.StringSlice("c", []string{"ok", "too long"}),
		attribute.Int("d", 1),
	}
	ctx, s := sdk.Tracer("t").Start(context.Background(), "s", trace.WithAttributes(attrs...))
	s.AddEvent("e", trace.WithAttributes(attribute.String("x", "0123456789")))
	_ = ctx
	s.End()
	flush(t, p)
	evs := rec.all()
	_, open, _ := find[*bridge.SpanOpen](evs, s.SpanContext().SpanID())
	if len(open.Attributes) != 3 {
		t.Fatalf("open attributes %v, want 3", open.Attributes)
	}
	if v := open.Attributes[1].Value.AsString(); v != "héll" {
		t.Fatalf("cut value %q, want %q (cut at a UTF-8 boundary)", v, "héll")
	}
	if v := open.Attributes[2].Value.AsStringSlice(); v[0] != "ok" || v[1] != "too l" {
		t.Fatalf("cut slice %q", v)
	}
	if attrs[1].Value.AsString() != "héllo wörld" {
		t.Fatal("the caller's attributes were modified")
	}
	_, end, _ := find[*bridge.SpanEndData](evs, s.SpanContext().SpanID())
	if end.DroppedAttributes != 1 || end.Events[0].Attributes[0].Value.AsString() != "01234" {
		t.Fatalf("end %+v", end)
	}
	st := p.Stats()
	if st.AttributesDropped != 1 || st.AttributesTruncated != 3 {
		t.Fatalf("stats %+v, want 1 dropped and 3 cut", st)
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"}, {"abcdef", 3, "abc"}, {"héllo", 2, "h"}, {"héllo", 3, "hé"},
		{"日本語", 4, "日"}, {"日本語", 0, ""}, {"\xff\xfe\xfd\xfc\xfb", 2, "\xff\xfe"},
	} {
		if got := truncateUTF8(tt.in, tt.n); got != tt.want {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func FuzzTruncateUTF8(f *testing.F) {
	f.Add("héllo wörld", 3)
	f.Add("日本語", 4)
	f.Add("\xff\x80\x80", 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 {
			n = -n
		}
		n %= len(s) + 2
		got := truncateUTF8(s, n)
		if len(got) > n || !strings.HasPrefix(s, got) {
			t.Fatalf("truncateUTF8(%q, %d) = %q", s, n, got)
		}
		if len(s) > n && len(got) < n-3 {
			t.Fatalf("cut too much: %q from %q at %d", got, s, n)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("truncateUTF8(%q, %d) = %q split a rune", s, n, got)
		}
	})
}

func TestChangedAttrs(t *testing.T) {
	a, b, c := attribute.String("a", "1"), attribute.String("b", "2"), attribute.String("c", "3")
	open := []attribute.KeyValue{a, b}
	if got := changedAttrs(open, open); got != nil {
		t.Fatalf("same slice: %v", got)
	}
	if got := changedAttrs(open, []attribute.KeyValue{a, b}); got != nil {
		t.Fatalf("equal copy: %v", got)
	}
	got := changedAttrs(open, []attribute.KeyValue{attribute.String("a", "9"), b, c})
	if len(got) != 2 || got[0].Value.AsString() != "9" || got[1] != c {
		t.Fatalf("changed: %v", got)
	}
	var many, manyEnd []attribute.KeyValue
	for i := 0; i < 40; i++ {
		kv := attribute.Int(string(rune('A'+i)), i)
		many = append(many, kv)
		manyEnd = append(manyEnd, kv)
	}
	manyEnd[7] = attribute.Int(string(rune('A'+7)), -1)
	if got := changedAttrs(many, manyEnd); len(got) != 1 || got[0] != manyEnd[7] {
		t.Fatalf("many: %v", got)
	}
}
