package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Row is one comparison of scripts/benchrows.tsv.
type Row struct {
	Label     string
	Metric    string // a unit as go test prints it: ns/op, B/op, allocs/op, spans/s, ...
	Candidate string // pkgdir:BenchmarkName/sub
	Baseline  string // pkgdir:BenchmarkName/sub, or "-"
	Target    string // "<=2.0", ">=1.0" (ratio), "<=+2" (difference), "-"
}

// ParseRows reads the tab-separated rows file; lines starting with # and blank lines
// are skipped.
func ParseRows(r io.Reader) ([]Row, error) {
	var rows []Row
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("line %d: %d tab-separated fields, want 5 (label, metric, candidate, baseline, target)", line, len(f))
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		row := Row{Label: f[0], Metric: f[1], Candidate: f[2], Baseline: f[3], Target: f[4]}
		if !strings.Contains(row.Candidate, ":") || (row.Baseline != "-" && !strings.Contains(row.Baseline, ":")) {
			return nil, fmt.Errorf("line %d: candidate and baseline must read pkgdir:BenchmarkName (baseline may be -)", line)
		}
		if _, err := parseTarget(row.Target); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// Results holds benchmark figures: "pkgdir:BenchmarkName/sub-P" → unit → values (one
// per run of the benchmark).
type Results struct {
	figures map[string]map[string][]float64
	CPU     string // from the "cpu:" line of go test
}

// NewResults returns empty results.
func NewResults() *Results { return &Results{figures: map[string]map[string][]float64{}} }

// Parse adds the benchmark lines of one output of `go test -bench` (or of a script
// printing lines in its format). Lines are attributed to the package of the last
// "pkg:" line, made relative to module ("." for the module's root); lines before any
// "pkg:" line to defaultPkg. Other lines are ignored.
func (res *Results) Parse(r io.Reader, module, defaultPkg string) error {
	pkg := defaultPkg
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "pkg:"):
			pkg = strings.TrimSpace(strings.TrimPrefix(line, "pkg:"))
			if pkg == module {
				pkg = "."
			} else {
				pkg = strings.TrimPrefix(pkg, module+"/")
			}
		case strings.HasPrefix(line, "cpu:") && res.CPU == "":
			res.CPU = strings.TrimSpace(strings.TrimPrefix(line, "cpu:"))
		case strings.HasPrefix(line, "Benchmark"):
			res.parseLine(pkg, line)
		}
	}
	return sc.Err()
}

// parseLine reads "BenchmarkName-P  N  v1 unit1  v2 unit2 ...".
func (res *Results) parseLine(pkg, line string) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 {
		return // a benchmark's log output, or a name without figures
	}
	if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
		return
	}
	key := pkg + ":" + f[0]
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		if res.figures[key] == nil {
			res.figures[key] = map[string][]float64{}
		}
		res.figures[key][f[i+1]] = append(res.figures[key][f[i+1]], v)
	}
}

// Lookup returns the median of a benchmark's figures in unit (one per run). ref is pkgdir:Name without
// the -GOMAXPROCS suffix that go test appends.
func (res *Results) Lookup(ref, unit string) (float64, bool) {
	vals := res.figures[ref][unit]
	if len(vals) == 0 {
		keys := make([]string, 0, len(res.figures))
		for k := range res.figures {
			if rest, ok := strings.CutPrefix(k, ref+"-"); ok && isDigits(rest) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			if vals = res.figures[k][unit]; len(vals) > 0 {
				break
			}
		}
	}
	if len(vals) == 0 {
		return 0, false
	}
	return median(vals), true
}

// median resists the odd run disturbed by other work on a shared machine.
func median(vals []float64) float64 {
	v := append([]float64(nil), vals...)
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// target is a parsed target: candidate/baseline (ratio) or candidate-baseline
// (difference) compared with limit; with no baseline, the candidate itself.
type target struct {
	none  bool
	op    string // "<=", ">=", "<", ">"
	limit float64
	diff  bool
}

func parseTarget(s string) (target, error) {
	if s == "-" || s == "" {
		return target{none: true}, nil
	}
	var t target
	for _, op := range []string{"<=", ">=", "<", ">"} {
		if rest, ok := strings.CutPrefix(s, op); ok {
			t.op = op
			t.diff = strings.HasPrefix(rest, "+") || strings.HasPrefix(rest, "-")
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				return t, fmt.Errorf("target %q: want <=2.0, >=1.0, <=+2 or -", s)
			}
			t.limit = v
			return t, nil
		}
	}
	return t, fmt.Errorf("target %q: want <=2.0, >=1.0, <=+2 or -", s)
}

func (t target) met(v float64) bool {
	const eps = 1e-9
	switch t.op {
	case "<=":
		return v <= t.limit+eps
	case ">=":
		return v >= t.limit-eps
	case "<":
		return v < t.limit
	default:
		return v > t.limit
	}
}

// Line is one formatted line of the report table.
type Line struct {
	Label, Candidate, Baseline, Ratio, Target, Met string
}

// Evaluate computes one row's line from the results.
func Evaluate(row Row, res *Results) Line {
	l := Line{Label: row.Label, Target: row.Target, Ratio: "-", Met: "-", Baseline: "-"}
	t, _ := parseTarget(row.Target)
	cand, okC := res.Lookup(row.Candidate, row.Metric)
	l.Candidate = "not run"
	if okC {
		l.Candidate = formatFigure(cand) + " " + row.Metric
	}
	okB := true
	var base float64
	if row.Baseline != "-" {
		base, okB = res.Lookup(row.Baseline, row.Metric)
		l.Baseline = "not run"
		if okB {
			l.Baseline = formatFigure(base) + " " + row.Metric
		}
	}
	if !okC || !okB {
		if !t.none {
			l.Met = "not run"
		}
		return l
	}
	value := cand
	switch {
	case row.Baseline == "-":
	case t.diff:
		value = cand - base
		l.Ratio = strconv.FormatFloat(value, 'f', -1, 64)
		if value >= 0 {
			l.Ratio = "+" + l.Ratio
		}
	case base == 0: // 0/0 counts as equal, n/0 as infinitely larger
		l.Ratio = "n/a (baseline 0)"
		value = 1
		if cand != 0 {
			value = math.Inf(int(math.Copysign(1, cand)))
		}
	default:
		value = cand / base
		l.Ratio = fmt.Sprintf("%.2f", value)
	}
	if !t.none {
		l.Met = "no"
		if t.met(value) {
			l.Met = "yes"
		}
	}
	return l
}

// formatFigure prints about three significant digits, without exponent for
// ordinary magnitudes.
func formatFigure(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// Header describes the run.
type Header struct {
	CPUs      int
	CPU       string
	GoVersion string
	Date      string
	Benchtime string
	Load      string // load averages (1, 5, 15 min) when the report was written; "" if unknown
	LoadStart string // the same when the benchmarks started; "" if unknown
}

// Write writes BENCHMARKS.md: a short header and one table.
func Write(w io.Writer, h Header, lines []Line) error {
	b := &strings.Builder{}
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` (scripts/bench.sh, rows from scripts/benchrows.tsv); do not edit by hand.\n\n")
	cpu := ""
	if h.CPU != "" {
		cpu = " (" + h.CPU + ")"
	}
	fmt.Fprintf(b, "Machine: %d CPUs%s, GOMAXPROCS as the machine has; %s; run %s; benchtime %s; "+
		"each figure is the median of the runs of its benchmark.\n\n", h.CPUs, cpu, h.GoVersion, h.Date, h.Benchtime)
	if h.Load != "" {
		start := ""
		if h.LoadStart != "" {
			start = "at start " + h.LoadStart + ", "
		}
		fmt.Fprintf(b, "Load average (1, 5, 15 min): %swhen written %s; on a busy machine even ratios move.\n\n", start, h.Load)
	}
	b.WriteString("**Compare ratios, not absolute numbers**: each candidate ran beside its baseline in the same run " +
		"on the same machine; absolute figures move with the machine and its load. Ratio is candidate / baseline, " +
		"or candidate - baseline where the target is a difference (+n).\n\n")
	b.WriteString("| Comparison | Candidate | Baseline (same run) | Ratio | Target | Met |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, l := range lines {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", cell(l.Label), cell(l.Candidate), cell(l.Baseline),
			cell(l.Ratio), cell(l.Target), cell(l.Met))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
