// Package metrics exposes a process's own counters and gauges to Prometheus through
// client_golang, read at scrape time from the functions that own them, so the hot
// paths keep plain atomic counters and never touch a registry. Every registry also
// serves the standard go_* and process_* metrics, in the text format or OpenMetrics as
// the scraper asks.
package metrics

import (
	"fmt"
	"net/http"
	"regexp"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Type is a metric family's Prometheus type.
type Type string

// The metric types used here.
const (
	CounterType Type = "counter"
	GaugeType   Type = "gauge"
)

// Sample is one value of a family, with its label values in the order of Family.Labels.
type Sample struct {
	LabelValues []string
	Value       float64
}

// Family is a named metric whose samples, one per set of label values, are collected
// at scrape time.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Labels  []string // label names; every Sample has one value per name
	Collect func() []Sample
}

// Registry holds metric families and serves them over HTTP (it is an http.Handler).
type Registry struct {
	reg     *prometheus.Registry
	handler http.Handler
}

var _ http.Handler = (*Registry)(nil)

// NewRegistry returns a registry that holds the Go runtime's and the process's
// standard metrics (go_*, process_*).
func NewRegistry() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg, handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError, // one broken family does not hide the others
		Registry:          reg,                      // counts those errors in promhttp_metric_handler_errors_total
	})}
}

// nameRE is the classic metric and label name syntax, which every scraper accepts.
var nameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// Register adds a family. Names are fixed in code, so a bad or duplicate name is a
// programming error and panics at start, never at scrape time.
func (r *Registry) Register(f Family) {
	if !nameRE.MatchString(f.Name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", f.Name))
	}
	var vt prometheus.ValueType
	switch f.Type {
	case CounterType:
		vt = prometheus.CounterValue
	case GaugeType:
		vt = prometheus.GaugeValue
	default:
		panic(fmt.Sprintf("metrics: metric %s has unknown type %q", f.Name, f.Type))
	}
	for _, l := range f.Labels {
		if !nameRE.MatchString(l) {
			panic(fmt.Sprintf("metrics: metric %s has invalid label name %q", f.Name, l))
		}
	}
	if err := r.reg.Register(&family{
		desc: prometheus.NewDesc(f.Name, f.Help, f.Labels, nil), vt: vt, collect: f.Collect,
	}); err != nil {
		panic(fmt.Sprintf("metrics: metric %s: %v", f.Name, err))
	}
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

// ServeHTTP answers GET and HEAD with every family, in the format the scraper accepts
// (Prometheus text by default, OpenMetrics when asked for).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "metrics: use GET", http.StatusMethodNotAllowed)
		return
	}
	r.handler.ServeHTTP(w, req)
}

// family adapts a Family to prometheus.Collector.
type family struct {
	desc    *prometheus.Desc
	vt      prometheus.ValueType
	collect func() []Sample
}

func (f *family) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f *family) Collect(ch chan<- prometheus.Metric) {
	for _, s := range f.collect() {
		m, err := prometheus.NewConstMetric(f.desc, f.vt, s.Value, s.LabelValues...)
		if err != nil {
			m = prometheus.NewInvalidMetric(f.desc, err)
		}
		ch <- m
	}
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
