package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := NewRegistry()
	var c Counter
	c.Add(41)
	c.Inc()
	r.CounterFunc("b_total", "Things counted.", c.Float)
	r.GaugeFunc("a_open", "Open now,\nwith a newline and a \\.", func() float64 { return 3.5 })
	r.Register(Family{Name: "c_total", Help: "Labelled.", Type: CounterType, Collect: func() []Sample {
		return []Sample{
			{Labels: []Label{{"kind", `say "hi"`}, {"x", "a\\b\nc"}}, Value: 1},
			{Labels: []Label{{"kind", "plain"}}, Value: 1e21},
		}
	}})
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	want := `# HELP a_open Open now,\nwith a newline and a \\.
# TYPE a_open gauge
a_open 3.5
# HELP b_total Things counted.
# TYPE b_total counter
b_total 42
# HELP c_total Labelled.
# TYPE c_total counter
c_total{kind="say \"hi\"",x="a\\b\nc"} 1
c_total{kind="plain"} 1e+21
`
	if string(body) != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", body, want)
	}

	post, err := http.Post(srv.URL, "text/plain", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", post.StatusCode)
	}
}

func TestValueFormats(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1: "1", 0.25: "0.25", 123456789: "1.23456789e+08"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestRegisterRefusesMistakes(t *testing.T) {
	for name, f := range map[string]func(r *Registry){
		"bad name": func(r *Registry) { r.CounterFunc("bad-name", "", func() float64 { return 0 }) },
		"bad type": func(r *Registry) {
			r.Register(Family{Name: "x", Type: "histogram", Collect: func() []Sample { return nil }})
		},
		"duplicate": func(r *Registry) { r.GaugeFunc("x", "", nil); r.GaugeFunc("x", "", nil) },
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
