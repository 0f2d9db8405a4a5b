// Command stwload is the load generator of stwbridge's benchmarks, and the counting
// sink at their far end.
//
//	stwload send --endpoint HOST:PORT [--mode events|spans] [--rate SPANS/S] [--duration D] ...
//	stwload sink --listen HOST:PORT --stats-file FILE [--discard]
//	stwload freeport   (prints 127.0.0.1:PORT with a port free a moment ago, for scripts)
//
// send streams realistic traces over OTLP/gRPC: in events mode as STW lifecycle events
// (SpanOpen when a span starts, SpanEndData a tick later when it ends), in spans mode
// as the same spans as plain OTLP traces, at a fixed rate or flat out (--rate 0).
// sink accepts OTLP/gRPC traces and logs, counts spans and lifecycle records, and
// measures how long each span's stw.span_open took from the span's start to arrive;
// with --discard it answers every export unread, the floor of any gRPC receiver.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: stwload send|sink|freeport [flags] (stwload send --help)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch args[0] {
	case "send":
		err = runSend(ctx, args[1:], stdout, stderr)
	case "sink":
		err = runSink(ctx, args[1:], stdout, stderr)
	case "freeport":
		err = freePort(stdout)
	default:
		err = fmt.Errorf("unknown command %q: use send or sink", args[0])
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "stwload:", err)
		return 1
	}
	return 0
}

func freePort(stdout io.Writer) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	_, err = fmt.Fprintln(stdout, l.Addr().String())
	return err
}
