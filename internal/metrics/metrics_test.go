package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// scrape GETs the registry with the given Accept header and returns the content type
// and the body.
func scrape(t *testing.T, r *Registry, accept string) (string, string) {
	t.Helper()
	srv := httptest.NewServer(r)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return resp.Header.Get("Content-Type"), string(body)
}

func testRegistry() *Registry {
	r := NewRegistry()
	var c Counter
	c.Add(41)
	c.Inc()
	r.CounterFunc("b_total", "Things counted.", c.Float)
	r.GaugeFunc("a_open", "Open now,\nwith a newline and a \\.", func() float64 { return 3.5 })
	r.Register(Family{Name: "c_total", Help: "Labelled.", Type: CounterType, Labels: []string{"kind", "x"}, Collect: func() []Sample {
		return []Sample{
			{LabelValues: []string{`say "hi"`, "a\\b\nc"}, Value: 1},
			{LabelValues: []string{"plain", ""}, Value: 1e21},
		}
	}})
	return r
}

func TestTextExposition(t *testing.T) {
	ct, body := scrape(t, testRegistry(), "")
	if !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the Prometheus text format", ct)
	}
	for _, want := range []string{
		"# HELP a_open Open now,\\nwith a newline and a \\\\.\n# TYPE a_open gauge\na_open 3.5\n",
		"# HELP b_total Things counted.\n# TYPE b_total counter\nb_total 42\n",
		"# TYPE c_total counter\nc_total{kind=\"plain\",x=\"\"} 1e+21\nc_total{kind=\"say \\\"hi\\\"\",x=\"a\\\\b\\nc\"} 1\n",
		// The standard collectors come with every registry.
		"\ngo_goroutines ", "\ngo_memstats_heap_alloc_bytes ", "\nprocess_resident_memory_bytes ", "\nprocess_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q:\n%s", want, body)
		}
	}
}

func TestOpenMetrics(t *testing.T) {
	ct, body := scrape(t, testRegistry(), "application/openmetrics-text; version=1.0.0")
	if !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		t.Errorf("Content-Type %q, want OpenMetrics", ct)
	}
	for _, want := range []string{"# TYPE b counter\nb_total 42.0\n", "# TYPE a_open gauge\na_open 3.5\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("OpenMetrics lacks %q:\n%s", want, body)
		}
	}
	if !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("OpenMetrics does not end with # EOF:\n%s", body[max(0, len(body)-200):])
	}
}

func TestOnlyGet(t *testing.T) {
	srv := httptest.NewServer(NewRegistry())
	defer srv.Close()
	post, err := http.Post(srv.URL, "text/plain", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed || post.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d Allow %q, want 405 and GET, HEAD", post.StatusCode, post.Header.Get("Allow"))
	}
}

// A family whose samples do not match its labels is a bug; the scrape still serves
// every other family and counts the error.
func TestBrokenFamilyKeepsTheRest(t *testing.T) {
	r := NewRegistry()
	r.GaugeFunc("good", "Fine.", func() float64 { return 1 })
	r.Register(Family{Name: "broken", Type: GaugeType, Labels: []string{"a"}, Collect: func() []Sample {
		return []Sample{{Value: 1}}
	}})
	_, body := scrape(t, r, "")
	if !strings.Contains(body, "\ngood 1\n") || strings.Contains(body, "\nbroken") {
		t.Errorf("scrape with a broken family:\n%s", body)
	}
	_, body = scrape(t, r, "")
	if !strings.Contains(body, `promhttp_metric_handler_errors_total{cause="gathering"} 1`) {
		t.Errorf("gathering error not counted:\n%s", body)
	}
}

func TestRegisterRefusesMistakes(t *testing.T) {
	zero := func() float64 { return 0 }
	for name, f := range map[string]func(r *Registry){
		"bad name":       func(r *Registry) { r.CounterFunc("bad-name", "", zero) },
		"bad label name": func(r *Registry) { r.Register(Family{Name: "x", Type: GaugeType, Labels: []string{"a-b"}}) },
		"bad type": func(r *Registry) {
			r.Register(Family{Name: "x", Type: "histogram", Collect: func() []Sample { return nil }})
		},
		"duplicate":          func(r *Registry) { r.GaugeFunc("x", "", zero); r.GaugeFunc("x", "", zero) },
		"standard duplicate": func(r *Registry) { r.GaugeFunc("go_goroutines", "", zero) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f(NewRegistry())
		})
	}
}
