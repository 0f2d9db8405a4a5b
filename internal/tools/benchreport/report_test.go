package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportFromFixture(t *testing.T) {
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	gomod := filepath.Join(t.TempDir(), "go.mod")
	if err := os.WriteFile(gomod, []byte("module example.com/mod\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run("testdata/rows.tsv", "testdata/bench", out, "3s", gomod, "0.5 0.4 0.3"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"benchtime 3s",
		"at start 0.5 0.4 0.3, when written",
		"(AMD EPYC)",
		"Compare ratios, not absolute numbers",
		"| Comparison | Candidate | Baseline (same run) | Ratio | Target | Met |",
		"| Publish serial | 30.0 ns/op | 20.0 ns/op | 1.50 | <=2.0 | yes |",
		// the median of several runs: (40+50)/2 / 30
		"| Publish parallel | 45.0 ns/op | 30.0 ns/op | 1.50 | <=1.0 | no |",
		"| Publish allocs | 0 allocs/op | 0 allocs/op | +0 | <=+0 | yes |",
		"| Publish allocs parallel | 0 allocs/op | 1.00 allocs/op | -1 | <=+0 | yes |",
		`| Forwarder \| throughput | 24000 spans/s | 30000 spans/s | 0.80 | >=1.0 | no |`,
		"| Forwarder RSS | 95.5 rss-MiB | - | - | <=100 | yes |",
		"| Sizes | 7.00 ns/op | - | - | - | - |",
		"| Root | 5.00 ns/op | - | - | - | - |",
		"| Missing | not run | 20.0 ns/op | - | <=2.0 | not run |",
		"| Missing baseline | 30.0 ns/op | not run | - | <=2.0 | not run |",
		"| Zero baseline | 0 B/op | 0 B/op | n/a (baseline 0) | <=1.5 | yes |",
		"| Over a zero baseline | 1.00 allocs/op | 0 allocs/op | n/a (baseline 0) | <=2.0 | no |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n| "); n != 13 {
		t.Errorf("table has %d lines, want header + 12 rows\n%s", n, got)
	}
}

func TestParseRowsRejectsBadLines(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a\tns/op\tbridge:B\n", "line 1: 3 tab-separated fields"},
		{"# c\n\na\tns/op\tB\t-\t-\n", "line 3: candidate and baseline must read pkgdir:BenchmarkName"},
		{"a\tns/op\tx:B\ty\t-\n", "line 1: candidate and baseline"},
		{"a\tns/op\tx:B\t-\t~2\n", `line 1: target "~2"`},
		{"a\tns/op\tx:B\t-\t<=two\n", `line 1: target "<=two"`},
	} {
		_, err := ParseRows(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseRows(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
}

func TestLookupStripsOnlyTheProcsSuffix(t *testing.T) {
	res := NewResults()
	in := "pkg: m/p\nBenchmarkA/n-1024-8 10 3 ns/op\nBenchmarkA/n-10 10 4 ns/op\nBenchmarkB 5 6 ns/op\nBenchmarkC 5\n" +
		"BenchmarkD 1 9 ns/op\nBenchmarkD 1 1 ns/op\nBenchmarkD 1 2 ns/op\n"
	if err := res.Parse(strings.NewReader(in), "m", "ignored"); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]float64{"p:BenchmarkA/n-1024": 3, "p:BenchmarkA/n": 4, "p:BenchmarkB": 6, "p:BenchmarkD": 2} {
		if v, ok := res.Lookup(ref, "ns/op"); !ok || v != want {
			t.Errorf("Lookup(%s) = %v, %v; want %v", ref, v, ok, want)
		}
	}
	for _, ref := range []string{"p:BenchmarkA", "p:BenchmarkC", "q:BenchmarkB"} {
		if _, ok := res.Lookup(ref, "ns/op"); ok {
			t.Errorf("Lookup(%s) found a figure", ref)
		}
	}
}

func TestRunReportsMissingFiles(t *testing.T) {
	if err := run("testdata/nope.tsv", "testdata/bench", filepath.Join(t.TempDir(), "x.md"), "1s", "go.mod", ""); err == nil ||
		!strings.Contains(err.Error(), "rows file") {
		t.Fatalf("run with a missing rows file = %v", err)
	}
	if err := run("testdata/rows.tsv", "testdata/bench", filepath.Join(t.TempDir(), "x.md"), "1s", "testdata/none", ""); err == nil ||
		!strings.Contains(err.Error(), "go.mod") {
		t.Fatalf("run with a missing go.mod = %v", err)
	}
}

func TestWriteHeader(t *testing.T) {
	var b strings.Builder
	h := Header{CPUs: 4, CPU: "Xeon", GoVersion: "go1.26 linux/amd64", Date: "2026-01-02 03:04 UTC", Benchtime: "2s", Load: "1.5 2.0 0.5"}
	if err := Write(&b, h, []Line{{Label: "a", Candidate: "1 ns/op", Baseline: "-", Ratio: "-", Target: "-", Met: "-"}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4 CPUs (Xeon)", "go1.26 linux/amd64", "run 2026-01-02 03:04 UTC", "benchtime 2s",
		"Load average (1, 5, 15 min): when written 1.5 2.0 0.5", "| a | 1 ns/op | - | - | - | - |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("header lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	h.Load = ""
	_ = Write(&b, h, nil)
	if strings.Contains(b.String(), "Load average") { // /proc/loadavg unreadable
		t.Error("an unknown load average was written")
	}
}
