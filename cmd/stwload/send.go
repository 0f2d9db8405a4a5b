package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/wirecodec"
	"github.com/stwbridge/stwbridge/stwotlp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type sendConfig struct {
	endpoint      string
	mode          string
	rate          int
	duration      time.Duration
	total         int
	spansPerTrace int
	spec          bool
	tick          time.Duration
	batch         int
	workers       int
	seed          uint64
}

type sendStats struct {
	spans, events, requests, retries, failed atomic.Uint64
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c sendConfig
	fs := flag.NewFlagSet("stwload send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.endpoint, "endpoint", "127.0.0.1:4317", "host:port of the OTLP/gRPC receiver (plaintext)")
	fs.StringVar(&c.mode, "mode", "events", "events: STW lifecycle events as OTLP logs; complete: each span as one protocol 1.1 stw.span record at its end; spans: the same spans as plain OTLP traces")
	fs.IntVar(&c.rate, "rate", 10000, "spans per second, in total; 0 sends flat out")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send (0: until --spans)")
	fs.IntVar(&c.total, "spans", 0, "stop after this many spans (0: until --duration)")
	fs.IntVar(&c.spansPerTrace, "spans-per-trace", 4, "spans per trace: a server span and its children")
	shape := fs.String("shape", "web", "web: traces of a server span and its children (--spans-per-trace); spec: traces of one span, the OpenTelemetry benchmark's (10 string attributes of 20 characters), alone in its stream")
	fs.DurationVar(&c.tick, "tick", 10*time.Millisecond, "at a fixed rate: one request per worker per tick; spans end one tick after they start")
	fs.IntVar(&c.batch, "batch", 256, "the most spans per request (flat out: every request)")
	fs.IntVar(&c.workers, "workers", 2, "concurrent senders, each with its own connection and its own streams")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the generated ids and attributes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *shape {
	case "web":
	case "spec":
		c.spec, c.spansPerTrace = true, 1
	default:
		return fmt.Errorf("--shape %q: use web or spec", *shape)
	}
	if c.mode != "events" && c.mode != "complete" && c.mode != "spans" {
		return fmt.Errorf("--mode %q: use events, complete or spans", c.mode)
	}
	if c.duration <= 0 && c.total <= 0 {
		return fmt.Errorf("set --duration or --spans, or the load never ends")
	}
	if c.workers <= 0 || c.tick <= 0 || c.batch <= 0 || c.rate < 0 {
		return fmt.Errorf("--workers, --tick and --batch must be positive, --rate not negative")
	}
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	var st sendStats
	var budget atomic.Int64
	budget.Store(int64(c.total))
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, c.workers)
	for w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker(ctx, c, w, &st, &budget); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	took := time.Since(start)
	fmt.Fprintf(stdout, "stwload: sent %d spans (%d events) in %s: %.0f spans/s; requests %d, retries %d, failed %d\n",
		st.spans.Load(), st.events.Load(), took.Round(time.Millisecond), float64(st.spans.Load())/took.Seconds(),
		st.requests.Load(), st.retries.Load(), st.failed.Load())
	return <-errs
}

// worker sends its share: its own connection, generator and streams, so the events of
// a stream are sent in order.
func worker(ctx context.Context, c sendConfig, id int, st *sendStats, budget *atomic.Int64) error {
	conn, err := grpc.NewClient(c.endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20),
			grpc.ForceCodecV2(wirecodec.New())))
	if err != nil {
		return err
	}
	defer conn.Close()
	// Requests leave as the encoder wrote them (wirecodec): no message tree to build.
	export := func(ctx context.Context, method string, req []byte, resp proto.Message) error {
		return conn.Invoke(ctx, method, wirecodec.Bytes(req), resp)
	}
	gen := newGenerator(c.seed*1000+uint64(id)+1, c.spansPerTrace, c.spec)

	// At a fixed rate, each tick sends what the rate asks for since the start, so a
	// slow tick is made up by the next instead of lowering the rate.
	var ticker *time.Ticker
	perSecond := float64(c.rate) / float64(c.workers)
	if c.rate > 0 {
		ticker = time.NewTicker(c.tick)
		defer ticker.Stop()
	}
	began := time.Now()
	sentSpans := 0
	// Requests go out on a context of their own: the end of --duration stops the loop,
	// not a request in flight.
	sendCtx := context.WithoutCancel(ctx)

	var pending []request // started in the previous request, ending now
	// send sends the ends (spans mode: the complete spans) of pending and the opens of
	// next in one request; next becomes pending.
	send := func(ctx context.Context, next []request) {
		switch c.mode {
		case "spans":
			var spans []bridge.Span
			for _, r := range pending {
				spans = append(spans, r.spans...)
			}
			if len(spans) > 0 {
				req := stwotlp.AppendSpans(nil, spans)
				deliver(ctx, st, func(ctx context.Context) error {
					return export(ctx, coltracepb.TraceService_Export_FullMethodName, req, &coltracepb.ExportTraceServiceResponse{})
				})
				st.spans.Add(uint64(len(spans)))
			}
		default:
			var batch []bridge.Event
			if c.mode == "events" {
				for _, r := range next {
					batch = append(batch, r.opens...)
				}
			}
			ended := 0
			for _, r := range pending {
				if c.mode == "complete" {
					batch = append(batch, r.completes...)
				} else {
					batch = append(batch, r.ends...)
				}
				ended += len(r.ends)
			}
			if len(batch) > 0 {
				req := stwotlp.AppendEvents(nil, batch)
				deliver(ctx, st, func(ctx context.Context) error {
					return export(ctx, collogspb.LogsService_Export_FullMethodName, req, &collogspb.ExportLogsServiceResponse{})
				})
				st.events.Add(uint64(len(batch)))
				st.spans.Add(uint64(ended))
			}
		}
		pending = next
	}

	for {
		if ticker != nil && int(perSecond*time.Since(began).Seconds())-sentSpans < c.batch {
			select {
			case <-ctx.Done():
			case <-ticker.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		spans := c.batch
		if c.rate > 0 {
			due := int(perSecond*time.Since(began).Seconds()) - sentSpans
			spans = min(due, c.batch) // behind: more requests, not larger ones
		}
		n := max(0, (spans+c.spansPerTrace/2)/c.spansPerTrace)
		if c.total > 0 && n > 0 {
			left := budget.Add(-int64(n * c.spansPerTrace))
			if left < 0 {
				n = max(0, n+int(left)/c.spansPerTrace)
				if n == 0 {
					break
				}
			}
		}
		if n == 0 {
			continue
		}
		sentSpans += n * c.spansPerTrace
		now := time.Now()
		next := make([]request, n)
		for i := range next {
			next[i] = gen.request(now, c.tick)
		}
		send(sendCtx, next)
		if c.total > 0 && budget.Load() <= 0 {
			break
		}
	}
	// End what is still open, even after the deadline.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	send(final, nil)
	return nil
}

// deliver sends one request, retrying refusals that ask for it (queue full).
func deliver(ctx context.Context, st *sendStats, call func(context.Context) error) {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := call(rctx)
		cancel()
		st.requests.Add(1)
		if err == nil {
			return
		}
		code := status.Code(err)
		if attempt >= 20 || (code != codes.Unavailable && code != codes.ResourceExhausted) || ctx.Err() != nil {
			st.failed.Add(1)
			return
		}
		st.retries.Add(1)
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
}
