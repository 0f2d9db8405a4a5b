// Package metrics exposes a process's own counters and gauges in the Prometheus text
// format (version 0.0.4), read at scrape time from the functions that own them, so the
// hot paths keep plain atomic counters and never touch a registry.
package metrics

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Type is a metric family's Prometheus type.
type Type string

// The metric types used here.
const (
	CounterType Type = "counter"
	GaugeType   Type = "gauge"
)

// Label is one label of a sample.
type Label struct{ Name, Value string }

// Sample is one value of a family, with its labels.
type Sample struct {
	Labels []Label
	Value  float64
}

// Family is a named metric whose samples are collected at scrape time.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Collect func() []Sample
}

// Registry holds metric families and serves them over HTTP (it is an http.Handler).
type Registry struct {
	mu       sync.Mutex
	families map[string]Family
}

var _ http.Handler = (*Registry)(nil)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{families: map[string]Family{}} }

var nameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// Register adds a family. Names are fixed in code, so a bad or duplicate name is a
// programming error and panics at start, never at scrape time.
func (r *Registry) Register(f Family) {
	if !nameRE.MatchString(f.Name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", f.Name))
	}
	if f.Type != CounterType && f.Type != GaugeType {
		panic(fmt.Sprintf("metrics: metric %s has unknown type %q", f.Name, f.Type))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.families[f.Name]; dup {
		panic(fmt.Sprintf("metrics: metric %s registered twice", f.Name))
	}
	r.families[f.Name] = f
}

// CounterFunc registers a counter read from f.
func (r *Registry) CounterFunc(name, help string, f func() float64) {
	r.Register(Family{Name: name, Help: help, Type: CounterType, Collect: single(f)})
}

// GaugeFunc registers a gauge read from f.
func (r *Registry) GaugeFunc(name, help string, f func() float64) {
	r.Register(Family{Name: name, Help: help, Type: GaugeType, Collect: single(f)})
}

func single(f func() float64) func() []Sample {
	return func() []Sample { return []Sample{{Value: f()}} }
}

// ContentType is the media type of the exposition.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// ServeHTTP writes every family, sorted by name.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "metrics: use GET", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	bw := bufio.NewWriter(w)
	r.Write(bw)
	_ = bw.Flush()
}

// Write writes the exposition of every family to w.
func (r *Registry) Write(w *bufio.Writer) {
	r.mu.Lock()
	fams := make([]Family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	sort.Slice(fams, func(i, j int) bool { return fams[i].Name < fams[j].Name })
	for _, f := range fams {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.Name, escapeHelp(f.Help), f.Name, f.Type)
		for _, s := range f.Collect() {
			w.WriteString(f.Name)
			if len(s.Labels) > 0 {
				w.WriteByte('{')
				for i, l := range s.Labels {
					if i > 0 {
						w.WriteByte(',')
					}
					fmt.Fprintf(w, "%s=\"%s\"", l.Name, escapeLabel(l.Value))
				}
				w.WriteByte('}')
			}
			w.WriteByte(' ')
			w.WriteString(formatValue(s.Value))
			w.WriteByte('\n')
		}
	}
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Counter is a monotonic counter for hot paths: one atomic add, no allocation.
type Counter struct{ v atomic.Uint64 }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Load returns the count.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Float returns the count as a float64, for CounterFunc.
func (c *Counter) Float() float64 { return float64(c.v.Load()) }
