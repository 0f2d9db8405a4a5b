// Command stwbridge is the standalone forwarder: it receives span lifecycle streams
// (STW over OTLP), plain OTLP and workerd tail events, reassembles complete spans,
// exports the spans of crashed or hung producers as unfinished, and forwards to an
// OpenTelemetry Collector, or prints a tree per trace on stdout.
//
//	stwbridge [serve] [flags]   run the forwarder (stwbridge --help lists the flags)
//	stwbridge tail [flags]      live view of the spans passing through a running stwbridge
//	stwbridge health            exit 0 when a running stwbridge answers on /healthz
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/stwbridge/stwbridge/internal/config"
	"github.com/stwbridge/stwbridge/internal/forwarder"
	"github.com/stwbridge/stwbridge/internal/tailcli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// The first signal starts the graceful shutdown; a second one ends the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if len(args) > 0 {
		switch args[0] {
		case "tail":
			return tailcli.Run(ctx, args[1:], stdout, stderr)
		case "health":
			return health(args[1:], stderr)
		case "serve":
			args = args[1:]
		}
	}

	cfg, err := config.Load(args, os.Getenv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "stwbridge:", err)
		return 2
	}
	log, err := config.NewLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "stwbridge:", err)
		return 2
	}
	slog.SetDefault(log) // parts that log through slog.Default use the configured format and level
	f, err := forwarder.New(ctx, cfg, log, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "stwbridge:", err)
		return 1
	}
	if err := f.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "stwbridge:", err)
		return 1
	}
	return 0
}
