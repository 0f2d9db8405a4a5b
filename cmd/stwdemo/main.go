// Command stwdemo is the instrumented app of the compose demo: an HTTP service traced
// with the OTel SDK and stwbridge's processor, with its own traffic generator and a
// background job that crashes mid-span on purpose.
//
// The exporter reads the standard OTEL_EXPORTER_OTLP_* variables, the resource
// OTEL_SERVICE_NAME (default stwdemo) and OTEL_RESOURCE_ATTRIBUTES. The demo's own
// settings:
//
//	STWDEMO_LISTEN            address of the HTTP service (default 127.0.0.1:8080)
//	STWDEMO_TRAFFIC_INTERVAL  pause between rounds of generated requests (default 2s; 0: none)
//	STWDEMO_SLOW              how long the slow request stays open (default 8s)
//	STWDEMO_JOB_DELAY         when the background job starts (default 5s; negative: never)
//	STWDEMO_JOB_STEP          duration of each job step (default 1s)
//	STWDEMO_CRASH_AFTER_STEPS the step at which the job kills the process (default 3; 0: never)
//
// `stwdemo healthcheck` checks a running demo (for container health checks).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/stwbridge/stwbridge/internal/demo"
	"github.com/stwbridge/stwbridge/otlpexport"
	"github.com/stwbridge/stwbridge/processor"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(env("STWDEMO_LISTEN", "127.0.0.1:8080")))
	}
	if err := run(log); err != nil {
		log.Error("stwdemo failed", "err", err)
		os.Exit(1)
	}
}

type settings struct {
	listen          string
	trafficInterval time.Duration
	slow            time.Duration
	jobDelay        time.Duration
	jobStep         time.Duration
	crashAfter      int
}

func readSettings() (settings, error) {
	var s settings
	var errs []error
	dur := func(name, def string) time.Duration {
		d, err := time.ParseDuration(env(name, def))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (use a Go duration such as 5s)", name, err))
		}
		return d
	}
	s.listen = env("STWDEMO_LISTEN", "127.0.0.1:8080")
	s.trafficInterval = dur("STWDEMO_TRAFFIC_INTERVAL", "2s")
	s.slow = dur("STWDEMO_SLOW", "8s")
	s.jobDelay = dur("STWDEMO_JOB_DELAY", "5s")
	s.jobStep = dur("STWDEMO_JOB_STEP", "1s")
	n, err := strconv.Atoi(env("STWDEMO_CRASH_AFTER_STEPS", "3"))
	if err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("STWDEMO_CRASH_AFTER_STEPS: %q is not a step number (0 never crashes)", env("STWDEMO_CRASH_AFTER_STEPS", "3")))
	}
	s.crashAfter = n
	return s, errors.Join(errs...)
}

func run(log *slog.Logger) error {
	s, err := readSettings()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	exp, err := otlpexport.New(ctx) // the standard OTEL_EXPORTER_OTLP_* variables
	if err != nil {
		return err
	}
	res, err := demo.Resource(ctx) // service.name stwdemo unless OTEL_SERVICE_NAME says otherwise
	if err != nil {
		return err
	}
	p := processor.New(exp)
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p), sdktrace.WithResource(res))
	tp := p.Wrap(sdk)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sdk.Shutdown(sctx); err != nil {
			log.Warn("shutdown", "err", err)
		}
	}()

	lis, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("STWDEMO_LISTEN %s: %w", s.listen, err)
	}
	srv := &http.Server{Handler: demo.Handler(tp), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	log.Info("stwdemo serving", "addr", lis.Addr().String())

	if s.trafficInterval > 0 {
		go demo.Traffic(ctx, "http://"+lis.Addr().String(), s.trafficInterval, s.slow, 5, log)
	}
	if s.jobDelay >= 0 {
		go func() {
			select {
			case <-time.After(s.jobDelay):
			case <-ctx.Done():
				return
			}
			demo.RunJob(ctx, tp, 5, s.crashAfter, s.jobStep, func() {
				log.Error("nightly-import crashed on purpose: exiting with spans open")
				os.Exit(3)
			})
		}()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func healthcheck(addr string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "unhealthy: status", resp.Status)
		return 1
	}
	return 0
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
