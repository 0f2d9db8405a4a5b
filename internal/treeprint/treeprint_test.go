package treeprint

import (
	"bytes"
	"context"
	"flag"
	"github.com/stwbridge/stwbridge/internal/testenv"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func tid(b byte) trace.TraceID { return trace.TraceID{0x4b, 0xf9, 15: b} }
func sid(b byte) trace.SpanID  { return trace.SpanID{7: b} }

func span(t byte, id, parent byte, name string, start, dur time.Duration) bridge.Span {
	return bridge.Span{TraceID: tid(t), SpanID: sid(id), Parent: sid(parent), Name: name,
		Start: t0.Add(start), End: t0.Add(start + dur)}
}

// sampleTrace is a request with a database query, a failed call, a long child that
// never ended, and a span whose parent is not in the group.
func sampleTrace() []bridge.Span {
	res := resource.NewSchemaless(attribute.String("service.name", "checkout"))
	root := span(1, 1, 0, "GET /checkout/{id}", 0, 120400*time.Microsecond)
	root.Resource = res
	root.Status = bridge.Status{Code: codes.Ok}
	root.Attributes = []attribute.KeyValue{
		attribute.String("user.id", "u-42"),
		attribute.Int("http.response.status_code", 200),
		attribute.String("http.request.method", "GET"),
		attribute.String("http.route", "/checkout/{id}"),
		attribute.Bool("cache.hit", false),
	}
	db := span(1, 2, 1, "SELECT orders", 2*time.Millisecond, 850*time.Microsecond)
	db.Attributes = []attribute.KeyValue{attribute.String("db.system", "postgresql"), attribute.String("db.statement", "SELECT * FROM orders WHERE id = $1")}
	charge := span(1, 3, 1, "charge card", 5*time.Millisecond, 80*time.Millisecond)
	charge.Status = bridge.Status{Code: codes.Error, Description: "card declined"}
	call := span(1, 4, 3, "POST api.payments.example", 6*time.Millisecond, 75*time.Millisecond)
	call.Attributes = []attribute.KeyValue{attribute.String("http.request.method", "POST")}
	stuck := span(1, 5, 1, "render invoice", 90*time.Millisecond, 2*time.Minute+3*time.Second)
	stuck.Unfinished = true
	stuck.Status = bridge.Status{Code: codes.Error, Description: "unfinished: producer stopped sending"}
	stuck.Attributes = []attribute.KeyValue{attribute.Bool("stw.unfinished", true), attribute.String("template", "invoice.html")}
	late := span(1, 9, 8, "async audit", 130*time.Millisecond, 1500*time.Millisecond)
	return []bridge.Span{stuck, call, root, late, db, charge} // arrival order, not start order
}

func TestFormatGolden(t *testing.T) {
	var b bytes.Buffer
	Format(&b, sampleTrace(), 4)
	golden(t, "trace.golden", b.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestFormatSurvivesBadInput(t *testing.T) {
	// A parent cycle and a span that is its own parent: every span printed once.
	spans := []bridge.Span{span(2, 1, 2, "a", 0, time.Millisecond), span(2, 2, 1, "b", 0, time.Millisecond), span(2, 3, 3, "c", 0, 0)}
	var b bytes.Buffer
	Format(&b, spans, 4)
	for _, name := range []string{" a ", " b ", " c "} {
		if strings.Count(b.String(), name) != 1 {
			t.Errorf("span %q not printed exactly once:\n%s", name, b.String())
		}
	}
	Format(&b, nil, 4) // nothing, no panic
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

// withClock sets the printer's clock.
func withClock(now func() time.Time) Option { return func(o *Options) { o.now = now } }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type syncBuffer = testenv.SyncBuffer

func TestPrinterGroupsByTrace(t *testing.T) {
	clk := &clock{now: t0}
	out := &syncBuffer{}
	p := New(out, WithGroupWait(time.Hour), withClock(clk.Now)) // the ticker never fires in time
	ctx := context.Background()
	_ = p.ConsumeSpans(ctx, []bridge.Span{span(1, 2, 1, "child", time.Millisecond, time.Millisecond)})
	clk.Add(30 * time.Minute)
	_ = p.ConsumeSpans(ctx, []bridge.Span{span(3, 1, 0, "other", 0, time.Millisecond)})
	_ = p.ConsumeSpans(ctx, []bridge.Span{span(1, 1, 0, "root", 0, 3*time.Millisecond)})
	p.printDue(false)
	if out.String() != "" {
		t.Fatalf("printed before the group wait:\n%s", out.String())
	}
	clk.Add(61 * time.Minute)
	_ = p.ConsumeSpans(ctx, []bridge.Span{span(3, 2, 1, "other child", 0, time.Millisecond)})
	p.printDue(false) // trace 1 is due; trace 3 just got a span
	got := out.String()
	if !strings.Contains(got, "root") || !strings.Contains(got, "└─ child") || strings.Contains(got, "other") {
		t.Fatalf("want trace 1 as one tree and trace 3 held back, got:\n%s", got)
	}
	_ = p.Shutdown(ctx) // prints the rest
	if got := out.String(); !strings.Contains(got, "other\n") && !strings.Contains(got, "└─ other child") {
		t.Fatalf("shutdown did not print the held trace:\n%s", got)
	}
	before := out.String()
	_ = p.ConsumeSpans(ctx, []bridge.Span{span(4, 1, 0, "after shutdown", 0, 0)})
	if !strings.Contains(strings.TrimPrefix(out.String(), before), "after shutdown") {
		t.Error("a span after Shutdown was not printed at once")
	}
}

func TestPrinterTicks(t *testing.T) {
	out := &syncBuffer{}
	p := New(out, WithGroupWait(20*time.Millisecond))
	defer p.Shutdown(context.Background())
	_ = p.ConsumeSpans(context.Background(), []bridge.Span{span(5, 1, 0, "ticked", 0, time.Millisecond)})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "ticked") {
		if time.Now().After(deadline) {
			t.Fatal("the printer did not print a quiet trace by itself")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0ns", 999: "999ns", 1500: "1.50µs", 850 * time.Microsecond: "850µs",
		12345 * time.Microsecond: "12.3ms", 1250 * time.Millisecond: "1.25s",
		123 * time.Second: "2m3s", -2 * time.Millisecond: "-2.00ms",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestPrinterMaxAttributes(t *testing.T) {
	var one, four bytes.Buffer
	Format(&one, sampleTrace(), 1)
	Format(&four, sampleTrace(), DefaultMaxAttributes)
	if one.String() == four.String() {
		t.Fatal("the sample trace does not show the attribute limit")
	}
	for n, want := range map[int]string{1: one.String(), 0: four.String()} {
		out := &syncBuffer{}
		p := New(out, WithMaxAttributes(n))
		_ = p.ConsumeSpans(context.Background(), sampleTrace())
		_ = p.Shutdown(context.Background())
		if out.String() != want {
			t.Errorf("WithMaxAttributes(%d) printed:\n%s\nwant:\n%s", n, out.String(), want)
		}
	}
}
