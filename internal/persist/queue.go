// Package persist is the forwarder's persistent queue: every request the receivers
// accept is written to a write-ahead log (internal/wal) and made durable before the
// sender gets its acknowledgement; after a crash (kill -9) the log is fed through the
// receivers again, so nothing acknowledged is lost.
//
// The log is kept short by checkpoints: the receivers are paused for a moment, the
// pipeline is drained into the assembler, and the events of every span still open are
// written as one snapshot record. Once everything handed downstream before the
// checkpoint has been sent, the records before the snapshot are committed and their
// segments deleted. After a restart, the snapshot restores the open spans (they later
// end or become unfinished) and the records after it are replayed. Delivery is at least
// once: a span that completed just before a crash may be sent twice.
package persist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stwbridge/stwbridge/bridge"
	"github.com/stwbridge/stwbridge/internal/options"
	"github.com/stwbridge/stwbridge/internal/wal"
	"github.com/stwbridge/stwbridge/stwotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Defaults.
const (
	// DefaultCheckpointInterval is how often open spans are snapshotted and the log is
	// cut.
	DefaultCheckpointInterval = 2 * time.Second
	// DefaultCheckpointTimeout bounds one checkpoint's wait for the pipeline and the
	// downstream.
	DefaultCheckpointTimeout = 30 * time.Second
	// DefaultMaxBytes bounds the log on disk, in bytes (1 GiB).
	DefaultMaxBytes = wal.DefaultMaxBytes
	// DefaultMaxBodyBytes bounds one HTTP request body kept, in bytes (20 MiB).
	DefaultMaxBodyBytes = 20 << 20
	// DefaultRetryAfter is the delay suggested to senders refused because the log is full.
	DefaultRetryAfter = time.Second
	// snapshotReserve is the share of MaxBytes kept free of requests for snapshots, so
	// that a full log can still be checkpointed and cut.
	snapshotReserve = 0.1
)

// The receivers' paths whose requests are kept, and the gRPC methods mapped onto them.
var (
	keptPaths   = map[string]bool{"/v1/logs": true, "/v1/traces": true, "/v1/stw": true}
	grpcMethods = map[string]string{
		"/opentelemetry.proto.collector.logs.v1.LogsService/Export":   "/v1/logs",
		"/opentelemetry.proto.collector.trace.v1.TraceService/Export": "/v1/traces",
	}
)

const contentProtobuf = "application/x-protobuf"

// Options configure a Queue. Zero fields take the defaults.
type Options struct {
	// MaxBytes bounds the log on disk, in bytes; at the bound requests are refused as
	// retryable. Default DefaultMaxBytes.
	MaxBytes int64
	// CheckpointInterval is how often a checkpoint is taken. Default
	// DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// CheckpointTimeout bounds one checkpoint. Default DefaultCheckpointTimeout.
	CheckpointTimeout time.Duration
	// MaxBodyBytes bounds one HTTP body kept, in bytes; larger requests get 413. Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RetryAfter is suggested to senders refused because the log is full. Default
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// Logger reports checkpoints that fail and corrupt records. Default slog.Default().
	Logger *slog.Logger
}

// Option changes Options.
type Option func(*Options)

// WithMaxBytes bounds the log on disk, in bytes.
func WithMaxBytes(n int64) Option { return func(o *Options) { o.MaxBytes = n } }

// WithCheckpointInterval sets how often a checkpoint is taken.
func WithCheckpointInterval(d time.Duration) Option {
	return func(o *Options) { o.CheckpointInterval = d }
}

// WithCheckpointTimeout bounds one checkpoint.
func WithCheckpointTimeout(d time.Duration) Option {
	return func(o *Options) { o.CheckpointTimeout = d }
}

// WithMaxBodyBytes bounds one HTTP body kept, in bytes.
func WithMaxBodyBytes(n int64) Option { return func(o *Options) { o.MaxBodyBytes = n } }

// WithRetryAfter sets the delay suggested to senders refused because the log is full.
func WithRetryAfter(d time.Duration) Option { return func(o *Options) { o.RetryAfter = d } }

// WithLogger sets the logger for failed checkpoints and corrupt records.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// Hooks connect a Queue to the forwarder it protects.
type Hooks struct {
	// FlushPipeline delivers every event published so far to the assembler.
	FlushPipeline func(ctx context.Context) error
	// FlushDownstream returns once everything handed downstream so far has been sent.
	FlushDownstream func(ctx context.Context) error
	// Losses returns how many items the downstream has given up on so far (optional): a
	// checkpoint during which it rises does not commit.
	Losses func() uint64
	// Snapshot returns the events that restore the spans open now (and any events held
	// back for order), as bridge.Assembler.Snapshot does.
	Snapshot func() []bridge.Event
}

// Stats are the queue's counters.
type Stats struct {
	Kept               int64 // requests written to the log
	Refused            int64 // requests refused because the log was full
	Checkpoints        int64 // checkpoints that committed
	CheckpointFailures int64 // checkpoints that could not commit (downstream not flushed, losses)
	Replayed           int64 // records fed through the receivers at start
	ReplayFailed       int64 // replayed records the receivers refused
	SnapshotEvents     int   // events in the last snapshot written
	WAL                wal.Stats
}

// Queue is the persistent queue. It is safe for concurrent use.
type Queue struct {
	opts  Options
	log   *slog.Logger
	wal   *wal.WAL
	hooks Hooks

	// gate is held shared by every request from before its record is appended until
	// its events are published, and exclusively by a checkpoint: a checkpoint sees
	// every kept record fully published.
	gate sync.RWMutex

	mu       sync.Mutex
	dirty    bool   // the next checkpoint writes a snapshot even with no new record
	lastSnap uint64 // index of the last snapshot record
	snapLen  int    // events in it

	cpMu    sync.Mutex // one checkpoint at a time; guards hooks
	started atomic.Bool

	kept, refused, checkpoints, cpFailures, replayed, replayFailed atomic.Int64

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type replayKey struct{}

// Open opens (or creates) the log in the data directory dir.
func Open(dir string, opt ...Option) (*Queue, error) {
	if dir == "" {
		return nil, errors.New("persist: no data directory given")
	}
	opts := options.Apply(opt)
	options.Positive(&opts.MaxBytes, DefaultMaxBytes)
	options.Positive(&opts.CheckpointInterval, DefaultCheckpointInterval)
	options.Positive(&opts.CheckpointTimeout, DefaultCheckpointTimeout)
	options.Positive(&opts.MaxBodyBytes, DefaultMaxBodyBytes)
	options.Positive(&opts.RetryAfter, DefaultRetryAfter)
	options.NonZero(&opts.Logger, slog.Default())
	segment := min(int64(wal.DefaultSegmentBytes), max(opts.MaxBytes/8, 4096))
	w, err := wal.Open(dir, wal.WithMaxBytes(opts.MaxBytes), wal.WithSegmentBytes(segment),
		wal.WithMaxRecordBytes(int(min(opts.MaxBytes, math.MaxInt32))), wal.WithLogger(opts.Logger))
	if err != nil {
		return nil, fmt.Errorf("persist: data directory %s: %w", dir, err)
	}
	return &Queue{opts: opts, log: opts.Logger, wal: w, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// ErrFull is returned (as a retryable refusal to senders) when the log is at its bound.
var ErrFull = errors.New("persist: persistent queue full (max_bytes): the downstream is not keeping up; retry later")

// keep appends one request durably. Callers hold gate shared.
func (q *Queue) keep(r Record) error {
	b, err := r.encode(make([]byte, 0, 64+len(r.Body)))
	if err != nil {
		return err
	}
	limit := int64(float64(q.opts.MaxBytes) * (1 - snapshotReserve))
	if q.wal.Stats().Bytes+int64(len(b))+64 > limit {
		q.refused.Add(1)
		return ErrFull
	}
	if _, err := q.wal.Append(b); err != nil {
		if errors.Is(err, wal.ErrFull) {
			q.refused.Add(1)
			return ErrFull
		}
		return err
	}
	q.kept.Add(1)
	return nil
}

func replaying(ctx context.Context) bool { return ctx.Value(replayKey{}) != nil }

// Middleware keeps POSTs to /v1/logs, /v1/traces and /v1/stw durably before next sees
// them; the sender's answer therefore comes after the request is on disk.
func (q *Queue) Middleware(next http.Handler) http.Handler {
	retry := strconv.Itoa(int(math.Ceil(q.opts.RetryAfter.Seconds())))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !keptPaths[r.URL.Path] || replaying(r.Context()) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, q.opts.MaxBodyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, fmt.Sprintf("request body larger than %d bytes", q.opts.MaxBodyBytes), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		q.gate.RLock()
		defer q.gate.RUnlock()
		if err := q.keep(Record{Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
			ContentEncoding: r.Header.Get("Content-Encoding"), Body: body}); err != nil {
			w.Header().Set("Retry-After", retry)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// UnaryServerInterceptor keeps OTLP/gRPC export requests durably before the handler
// runs. The request is taken as its raw bytes when it offers them (Bytes() []byte),
// else marshalled.
func (q *Queue) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		path, ok := grpcMethods[info.FullMethod]
		if !ok || replaying(ctx) {
			return handler(ctx, req)
		}
		var body []byte
		switch m := req.(type) {
		case interface{ Bytes() []byte }:
			body = m.Bytes()
		case proto.Message:
			b, err := proto.Marshal(m)
			if err != nil {
				return nil, status.Errorf(codes.Internal, "persist: cannot keep the request: %v", err)
			}
			body = b
		default:
			return nil, status.Errorf(codes.Internal, "persist: cannot keep a request of type %T", req)
		}
		q.gate.RLock()
		defer q.gate.RUnlock()
		if err := q.keep(Record{Path: path, ContentType: contentProtobuf, Body: body}); err != nil {
			st := status.New(codes.Unavailable, err.Error())
			if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(q.opts.RetryAfter)}); derr == nil {
				st = d
			}
			return nil, st.Err()
		}
		return handler(ctx, req)
	}
}

// snapshot encodes events (the open spans' state) as a record replayed through the
// receivers' OTLP/HTTP logs path.
func snapshot(events []bridge.Event) Record {
	return Record{Path: "/v1/logs", ContentType: contentProtobuf, Body: stwotlp.AppendEvents(nil, events)}
}

// Replay feeds every record not yet committed through h (the receivers' HTTP handler,
// without this queue's middleware), oldest first. A record refused as retryable (503,
// pipeline full) is retried after flushing the pipeline. Call it before serving.
func (q *Queue) Replay(ctx context.Context, h http.Handler, flushPipeline func(context.Context) error) error {
	rctx := context.WithValue(ctx, replayKey{}, true)
	statuses := map[int]int{}
	err := q.wal.Replay(func(idx uint64, p []byte) error {
		rec, err := decodeRecord(p)
		if err != nil {
			q.replayFailed.Add(1)
			q.log.Error("persist: skipping a record that cannot be decoded", "index", idx, "err", err)
			return nil
		}
		for attempt := 0; ; attempt++ {
			code := serve(rctx, h, rec)
			if code < 300 {
				q.replayed.Add(1)
				return nil
			}
			if code != http.StatusServiceUnavailable || attempt >= 100 {
				q.replayFailed.Add(1)
				statuses[code]++
				return nil
			}
			if flushPipeline != nil {
				if err := flushPipeline(ctx); err != nil {
					return err
				}
			}
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	})
	if len(statuses) > 0 {
		q.log.Warn("persist: some replayed records were refused by the receivers", "by_status", statuses)
	}
	st := q.wal.Stats()
	q.mu.Lock()
	q.lastSnap = st.LastIndex // nothing after this is new; the next checkpoint cuts it all
	q.dirty = true
	q.mu.Unlock()
	if n := q.replayed.Load() + q.replayFailed.Load(); n > 0 {
		q.log.Info("persist: replayed the persistent queue", "records", n, "refused", q.replayFailed.Load(),
			"corrupt_skipped", st.CorruptRecords, "torn_tail_cut", st.TruncatedTails)
	}
	return err
}

// serve runs one record through h and returns the status code.
func serve(ctx context.Context, h http.Handler, rec Record) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rec.Path, bytes.NewReader(rec.Body))
	if err != nil {
		return http.StatusBadRequest
	}
	if rec.ContentType != "" {
		req.Header.Set("Content-Type", rec.ContentType)
	}
	if rec.ContentEncoding != "" {
		req.Header.Set("Content-Encoding", rec.ContentEncoding)
	}
	req.RemoteAddr = "replay"
	w := &statusWriter{header: http.Header{}}
	h.ServeHTTP(w, req)
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

type statusWriter struct {
	header http.Header
	code   int
}

func (w *statusWriter) Header() http.Header { return w.header }
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(b), nil
}
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

// Start takes a checkpoint every CheckpointInterval until Close.
func (q *Queue) Start(h Hooks) {
	q.cpMu.Lock()
	q.hooks = h
	q.cpMu.Unlock()
	q.started.Store(true)
	// Close cancels a checkpoint in progress (one waiting on a dead downstream, say).
	stopCtx, stopCancel := context.WithCancel(context.Background())
	go func() {
		<-q.stop
		stopCancel()
	}()
	go func() {
		defer close(q.done)
		t := time.NewTicker(q.opts.CheckpointInterval)
		defer t.Stop()
		for {
			select {
			case <-q.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(stopCtx, q.opts.CheckpointTimeout)
			if err := q.Checkpoint(ctx); err != nil && stopCtx.Err() == nil {
				q.log.Warn("persist: checkpoint did not commit; the log keeps growing until one does", "err", err)
			}
			cancel()
		}
	}()
}

// Checkpoint snapshots the open spans and, once the downstream has sent everything
// handed to it before, commits the log up to the snapshot. It needs the Hooks of Start.
func (q *Queue) Checkpoint(ctx context.Context) error {
	q.cpMu.Lock()
	defer q.cpMu.Unlock()
	if q.hooks.FlushPipeline == nil || q.hooks.FlushDownstream == nil || q.hooks.Snapshot == nil {
		return errors.New("persist: Checkpoint before Start")
	}
	var losses uint64
	if q.hooks.Losses != nil {
		losses = q.hooks.Losses()
	}
	q.gate.Lock()
	last := q.wal.Stats().LastIndex
	q.mu.Lock()
	idle := !q.dirty && last == q.lastSnap
	q.mu.Unlock()
	if !idle {
		if err := q.hooks.FlushPipeline(ctx); err != nil {
			q.gate.Unlock()
			q.cpFailures.Add(1)
			return fmt.Errorf("persist: checkpoint: draining the pipeline: %w", err)
		}
	}
	events := q.hooks.Snapshot()
	// With no new record, spans can only have left (ended or reported unfinished):
	// the last snapshot still holds if it has as many events.
	if idle && len(events) == q.snapLen {
		q.gate.Unlock()
		return nil
	}
	b, err := snapshot(events).encode(nil)
	if err == nil {
		var idx uint64
		if idx, err = q.wal.Append(b); err == nil {
			q.mu.Lock()
			q.lastSnap, q.snapLen, q.dirty = idx, len(events), false
			q.mu.Unlock()
		}
	}
	q.gate.Unlock()
	if err != nil {
		q.cpFailures.Add(1)
		return fmt.Errorf("persist: checkpoint: writing the snapshot: %w", err)
	}
	if err := q.hooks.FlushDownstream(ctx); err != nil {
		q.cpFailures.Add(1)
		return fmt.Errorf("persist: checkpoint: downstream not flushed: %w", err)
	}
	if q.hooks.Losses != nil && q.hooks.Losses() != losses {
		q.cpFailures.Add(1)
		return errors.New("persist: checkpoint: the downstream gave up on data during the checkpoint; keeping the log (a restart sends it again)")
	}
	if last > 0 {
		if err := q.wal.Ack(last); err != nil {
			q.cpFailures.Add(1)
			return fmt.Errorf("persist: checkpoint: commit: %w", err)
		}
	}
	q.checkpoints.Add(1)
	return nil
}

// Close stops checkpointing. When delivered is true (a graceful shutdown flushed
// everything downstream and reported open spans as unfinished), the whole log is
// committed; otherwise it is kept for the next start. Then the log is closed.
func (q *Queue) Close(delivered bool) error {
	q.stopOnce.Do(func() { close(q.stop) })
	if q.started.Load() {
		<-q.done
	}
	q.cpMu.Lock()
	defer q.cpMu.Unlock()
	var err error
	if delivered {
		if last := q.wal.Stats().LastIndex; last > 0 {
			err = q.wal.Ack(last)
		}
	}
	return errors.Join(err, q.wal.Close())
}

// Stats returns the counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	n := q.snapLen
	q.mu.Unlock()
	return Stats{
		Kept: q.kept.Load(), Refused: q.refused.Load(), Checkpoints: q.checkpoints.Load(),
		CheckpointFailures: q.cpFailures.Load(), Replayed: q.replayed.Load(), ReplayFailed: q.replayFailed.Load(),
		SnapshotEvents: n, WAL: q.wal.Stats(),
	}
}
