package forwarder

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/stwbridge/stwbridge/internal/config"
)

// Temporary profiling harness (deleted before the report).
func TestZZTmpProf(t *testing.T) {
	addr := os.Getenv("ZZPROF_SINK")
	if addr == "" {
		t.Skip()
	}
	cfg, err := config.Load([]string{"--listen", "127.0.0.1:47111", "--http-listen", "127.0.0.1:47112", "--forward", "http://" + addr, "--log-level", "warn"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	time.Sleep(2 * time.Second)
	pf, _ := os.Create(os.Getenv("ZZPROF_OUT"))
	pprof.StartCPUProfile(pf)
	time.Sleep(10 * time.Second)
	pprof.StopCPUProfile()
	pf.Close()
	cancel()
	<-done
}
