// Package tailcli is `stwbridge tail`: a live terminal view of the spans passing
// through a running stwbridge, open ones included.
//
// It reads GET /v1/live (package live) and shows, per trace, an indented tree of
// spans: open spans with a ticking elapsed time, renames as they happen, ended spans
// with their duration and status, unfinished spans in red, logs and exceptions under
// their span. --format json prints the stream's events one per line instead, and when
// stdout is not a terminal a plain text line per event replaces the tree.
package tailcli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"
	"go.opentelemetry.io/otel/trace"

	"github.com/stwbridge/stwbridge/internal/live"
)

// DefaultFrom is the stwbridge that tail reads when --from is not given: the default
// of `stwbridge --http-listen`.
const DefaultFrom = "http://127.0.0.1:4318"

// Output formats of --format.
const (
	FormatPretty = "pretty" // the live tree; plain lines when stdout is not a terminal
	FormatJSON   = "json"   // one event per line, the JSON form of GET /v1/live
	FormatPlain  = "plain"  // one readable line per event, no escape codes
)

// config is the parsed command line.
type config struct {
	from   string
	filter live.Filter
	format string
	token  string // bearer token for a stwbridge that requires one
}

const usage = `usage: stwbridge tail [flags]

Shows the spans passing through a running stwbridge as they open, rename and end.
In a terminal: a live tree per trace (keys: p pause/resume, / filter, esc clear
filter, q quit). Elsewhere, or with --format plain: one line per event.

flags:
`

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("stwbridge tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var cfg config
	var traceID, status string
	fs.StringVar(&cfg.from, "from", DefaultFrom, "base URL of the stwbridge HTTP listener to watch")
	fs.StringVar(&cfg.filter.Service, "service", "", "only events of this service (service.name)")
	fs.StringVar(&cfg.filter.Search, "search", "", "only spans whose name contains this text (any case), and logs and exceptions containing it")
	fs.StringVar(&status, "status", "", "only how spans ended: error, ok or unfinished")
	fs.StringVar(&traceID, "trace-id", "", "only this trace (32 hex digits)")
	fs.DurationVar(&cfg.filter.MinOpen, "min-open", 0, "only spans open at least this long, e.g. 2s (shown once they reach it)")
	tokenFile := os.Getenv("STWBRIDGE_BEARER_TOKEN_FILE")
	fs.StringVar(&tokenFile, "bearer-token-file", tokenFile, "send the bearer token in this file, for a stwbridge started with --bearer-token-file (env STWBRIDGE_BEARER_TOKEN_FILE)")
	fs.StringVar(&cfg.format, "format", FormatPretty, "output: pretty (a live tree; plain lines when stdout is not a terminal), json (one event per line) or plain")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q; filters are flags, e.g. --search %s", fs.Arg(0), fs.Arg(0))
	}
	u, err := url.Parse(cfg.from)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config{}, fmt.Errorf("--from %q is not an http:// or https:// URL such as %s", cfg.from, DefaultFrom)
	}
	switch status {
	case "", live.FilterError, live.FilterOK, live.FilterUnfinished:
		cfg.filter.Status = status
	default:
		return config{}, fmt.Errorf("--status %q is not one of error, ok, unfinished", status)
	}
	if traceID != "" {
		id, err := trace.TraceIDFromHex(strings.ToLower(traceID))
		if err != nil {
			return config{}, fmt.Errorf("--trace-id %q is not 32 hex digits (and not all zeros)", traceID)
		}
		cfg.filter.TraceID = id
	}
	if cfg.filter.MinOpen < 0 {
		return config{}, fmt.Errorf("--min-open %v is negative", cfg.filter.MinOpen)
	}
	switch cfg.format {
	case FormatPretty, FormatJSON, FormatPlain:
	default:
		return config{}, fmt.Errorf("--format %q is not one of pretty, json, plain", cfg.format)
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return config{}, fmt.Errorf("--bearer-token-file: %w", err)
		}
		if cfg.token = strings.TrimSpace(string(b)); cfg.token == "" {
			return config{}, fmt.Errorf("--bearer-token-file %s is empty", tokenFile)
		}
	}
	cfg.filter.KeepAlive = keepAlive
	return cfg, nil
}

// liveURL is the GET /v1/live request for the configuration.
func (c config) liveURL() string {
	return strings.TrimRight(c.from, "/") + "/v1/live?" + c.filter.Query().Encode()
}

// Run runs `stwbridge tail` with its arguments (those after "tail") and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "stwbridge tail: %v\n", err)
		return 2
	}
	if cfg.format == FormatPretty && !isTerminal(stdout) {
		cfg.format = FormatPlain
	}
	if cfg.format == FormatPretty {
		return runPretty(ctx, cfg, stdout, stderr)
	}
	return runLines(ctx, cfg, stdout, stderr)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// runLines prints one line per event: the event's JSON, or a plain text line.
func runLines(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := bufio.NewWriter(stdout)
	var writeErr error
	s := &stream{
		url:    cfg.liveURL(),
		token:  cfg.token,
		client: &http.Client{},
		deliver: func(batch []item) {
			if writeErr != nil {
				return
			}
			for i := range batch {
				if cfg.format == FormatJSON {
					out.Write(batch[i].raw)
					out.WriteByte('\n')
				} else {
					out.WriteString(plainLine(&batch[i].ev))
					out.WriteByte('\n')
				}
			}
			if err := out.Flush(); err != nil {
				writeErr = err
				cancel()
			}
		},
		status: func(c connState) {
			if c.connected {
				fmt.Fprintf(stderr, "stwbridge tail: watching %s\n", cfg.from)
			} else {
				fmt.Fprintf(stderr, "stwbridge tail: %v; retrying in %s\n", c.err, c.retryIn.Round(time.Millisecond))
			}
		},
		bad: func(line []byte, err error) {
			fmt.Fprintf(stderr, "stwbridge tail: skipped a line of the stream: %v\n", err)
		},
	}
	err := s.run(ctx)
	switch {
	case writeErr != nil && errors.Is(writeErr, syscall.EPIPE):
		return 0 // the reader went away (| head): a normal end
	case writeErr != nil:
		fmt.Fprintf(stderr, "stwbridge tail: writing output: %v\n", writeErr)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "stwbridge tail: %v\n", err)
		return 1
	}
	return 0
}

// runPretty runs the live tree until q, or until the server refuses the stream.
func runPretty(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	m := newModel(cfg.from, time.Now())
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithOutput(stdout))
	sctx, cancel := context.WithCancel(ctx)
	s := &stream{
		url:     cfg.liveURL(),
		token:   cfg.token,
		client:  &http.Client{},
		deliver: func(batch []item) { p.Send(eventsMsg(slices.Clone(batch))) },
		status:  func(c connState) { p.Send(connMsg(c)) },
		bad:     func(_ []byte, err error) { p.Send(badLineMsg{err}) },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.run(sctx); err != nil {
			p.Send(streamEndMsg{err})
		}
	}()
	_, err := p.Run()
	cancel()
	<-done
	switch {
	case m.err != nil:
		fmt.Fprintf(stderr, "stwbridge tail: %v\n", m.err)
		return 1
	case errors.Is(err, tea.ErrInterrupted):
		return 130
	case err != nil && ctx.Err() != nil:
		return 0 // asked to stop
	case err != nil:
		fmt.Fprintf(stderr, "stwbridge tail: %v\n", err)
		return 1
	}
	return 0
}
