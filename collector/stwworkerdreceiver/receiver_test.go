package stwworkerdreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stwbridge/stwbridge/internal/stwingest"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

func sample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "workerd-stw-sample.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sampleEvents is the number of events in the sample: one per non-empty line.
func sampleEvents(t *testing.T) int {
	n := 0
	for _, line := range strings.Split(sample(t), "\n") {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n
}

// start runs a receiver on a free loopback port in front of next.
func start(t *testing.T, next consumer.Logs) string {
	t.Helper()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(Type), cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return "http://" + r.(*stwReceiver).addr() + DefaultPath
}

func post(t *testing.T, url, ctype, body string) (int, stwingest.Response) {
	t.Helper()
	res, err := http.Post(url, ctype, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r stwingest.Response
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return res.StatusCode, r
}

func TestSampleBecomesLifecycleRecords(t *testing.T) {
	sink := &consumertest.LogsSink{}
	url := start(t, sink)
	body := sample(t)
	// A bad line among good ones: rejected alone.
	code, r := post(t, url, "application/x-ndjson", body+"{\"not\":\"an event\"}\n")
	want := sampleEvents(t)
	if code != http.StatusOK || r.Accepted != want || r.Rejected != 1 || len(r.Errors) != 1 {
		t.Fatalf("answer %d %+v, want 200 with %d accepted and 1 rejected", code, r, want)
	}
	if n := sink.LogRecordCount(); n != want {
		t.Fatalf("%d records handed on, want %d", n, want)
	}
	recs := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	if name := recs.At(0).EventName(); name != "stw.onset" {
		t.Errorf("first record %q, want stw.onset", name)
	}
	for i := 0; i < recs.Len(); i++ {
		if recs.At(i).TraceID().IsEmpty() {
			t.Errorf("record %d (%s) has no trace id: routing by trace id would split its stream", i, recs.At(i).EventName())
		}
	}
}

func TestRefusals(t *testing.T) {
	url := start(t, consumertest.NewNop())
	for _, c := range []struct {
		name, method, ctype, body string
		code                      int
	}{
		{"GET", http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{"protobuf", http.MethodPost, "application/x-protobuf", "x", http.StatusUnsupportedMediaType},
		{"malformed", http.MethodPost, "application/json", "[{", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(c.method, url, strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.code {
			t.Errorf("%s: %s, want %d", c.name, res.Status, c.code)
		}
	}
}

// A refusal of the pipeline: retryable (memory_limiter) is 503 with Retry-After,
// permanent is 400.
func TestPipelineRefusal(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{errors.New("memory limit"), http.StatusServiceUnavailable},
		{consumererror.NewPermanent(errors.New("bad data")), http.StatusBadRequest},
	} {
		next, _ := consumer.NewLogs(func(context.Context, plog.Logs) error { return c.err })
		url := start(t, next)
		code, r := post(t, url, "application/x-ndjson", sample(t))
		if want := sampleEvents(t); code != c.code || r.Accepted != 0 || r.Dropped != want || !strings.Contains(r.Message, c.err.Error()) {
			t.Errorf("pipeline error %v: answer %d %+v, want %d, %d dropped", c.err, code, r, c.code, want)
		}
	}
}
