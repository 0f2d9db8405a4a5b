package demo

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Traffic sends the demo's requests to base (e.g. "http://127.0.0.1:8080") in a loop
// until ctx ends: /hello, /users/{id}, and every `slowEvery` rounds one /slow request
// that stays open for slow.
func Traffic(ctx context.Context, base string, interval, slow time.Duration, slowEvery int, log *slog.Logger) {
	client := &http.Client{Timeout: slow + 10*time.Second}
	get := func(path string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("demo request failed", "path", path, "err", err)
			}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for round := 0; ; round++ {
		get("/hello")
		get("/users/42")
		if slowEvery > 0 && round%slowEvery == 0 {
			go get("/slow?for=" + slow.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
