// Package memlimit refuses work while the process uses more memory than a soft limit,
// as the Collector's memory_limiter does: well-behaved senders get gRPC Unavailable with
// a RetryInfo delay (HTTP 503 with Retry-After), back off, and retry without loss.
// Memory is sampled at an interval from runtime/metrics, never per request; the hot
// path reads one atomic flag.
package memlimit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/stwbridge/stwbridge/internal/options"
)

// Defaults.
const (
	// DefaultCheckInterval is how often memory is sampled.
	DefaultCheckInterval = 250 * time.Millisecond
	// DefaultRetryAfter is the delay suggested to refused senders.
	DefaultRetryAfter = time.Second
	// DefaultMinGCInterval is the least time between forced garbage collections (and
	// calls of Reclaim) when the limit is exceeded.
	DefaultMinGCInterval = 2 * time.Second
)

// heapMetric is the runtime/metrics sample read: bytes in live and not yet swept heap
// objects (what runtime.MemStats calls HeapAlloc), cheap to read.
const heapMetric = "/memory/classes/heap/objects:bytes"

// Options configure a Limiter.
type Options struct {
	// LimitBytes is the soft limit in bytes. Zero: use LimitPercent.
	LimitBytes uint64
	// LimitPercent is the soft limit in percent of the memory available to the process
	// (the cgroup limit, else the machine's total). Used when LimitBytes is zero.
	LimitPercent float64
	// CheckInterval is how often memory is sampled. Default DefaultCheckInterval.
	CheckInterval time.Duration
	// RetryAfter is the retry delay suggested to refused senders. Default DefaultRetryAfter.
	RetryAfter time.Duration
	// Reclaim, when set, is called above the limit before the forced collection: it lets
	// go of what the process keeps only to do better later (the assembler's late spans
	// and idle streams), so that refusals end even when nothing new can get in.
	Reclaim func()
	// Logger reports crossing the limit. Default slog.Default().
	Logger *slog.Logger

	// minGCInterval is the least time between forced collections (tests shorten it).
	minGCInterval time.Duration
	// readMemory returns the bytes in use (tests set a fake). Default: the heap objects
	// runtime metric.
	readMemory func() uint64
}

// Option sets a field of Options.
type Option func(*Options)

// WithLimitMiB sets the soft limit in MiB.
func WithLimitMiB(n uint64) Option { return func(o *Options) { o.LimitBytes = n << 20 } }

// WithLimitPercent sets the soft limit in percent of the available memory.
func WithLimitPercent(p float64) Option { return func(o *Options) { o.LimitPercent = p } }

// WithCheckInterval sets how often memory is sampled.
func WithCheckInterval(d time.Duration) Option { return func(o *Options) { o.CheckInterval = d } }

// WithRetryAfter sets the retry delay suggested to refused senders.
func WithRetryAfter(d time.Duration) Option { return func(o *Options) { o.RetryAfter = d } }

// WithReclaim sets the function called above the limit to let go of reclaimable memory.
func WithReclaim(f func()) Option { return func(o *Options) { o.Reclaim = f } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// Limiter tracks memory against a soft limit and refuses requests above it.
type Limiter struct {
	opts  Options
	limit uint64
	log   *slog.Logger

	over     atomic.Bool
	used     atomic.Uint64
	refused  atomic.Int64
	gcs      atomic.Int64
	reclaims atomic.Int64

	mu     sync.Mutex // serialises Check
	lastGC time.Time

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New builds a Limiter. It fails when no limit is given or the percentage cannot be
// resolved. Call Start to begin sampling and Stop to end it.
func New(opts ...Option) (*Limiter, error) {
	o := options.Apply(opts)
	options.Positive(&o.CheckInterval, DefaultCheckInterval)
	options.Positive(&o.RetryAfter, DefaultRetryAfter)
	options.Positive(&o.minGCInterval, DefaultMinGCInterval)
	options.NonZero(&o.Logger, slog.Default())
	if o.readMemory == nil {
		o.readMemory = readHeap
	}
	limit := o.LimitBytes
	if limit == 0 {
		if o.LimitPercent <= 0 || o.LimitPercent > 100 {
			return nil, fmt.Errorf("memlimit: set a soft limit in MiB or a percentage in (0, 100], got %v%%", o.LimitPercent)
		}
		total, err := availableMemory()
		if err != nil {
			return nil, fmt.Errorf("memlimit: cannot resolve %v%% of available memory (set the limit in MiB instead): %w", o.LimitPercent, err)
		}
		limit = uint64(float64(total) * o.LimitPercent / 100)
	}
	return &Limiter{opts: o, limit: limit, log: o.Logger, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

func readHeap() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// availableMemory returns the cgroup v2 or v1 memory limit, else MemTotal.
func availableMemory() (uint64, error) {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && v > 0 && v < 1<<60 { // "max" or a huge v1 value: no limit
			return v, nil
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no MemTotal in /proc/meminfo")
}

// Start samples memory every CheckInterval until Stop.
func (l *Limiter) Start() {
	l.Check()
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.opts.CheckInterval)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.Check()
			}
		}
	}()
}

// Stop ends sampling started by Start.
func (l *Limiter) Stop() {
	l.stopOnce.Do(func() {
		close(l.stop)
	})
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
	}
}

// Check samples memory now and updates the refusing state. Above the limit it calls
// Reclaim and forces a garbage collection (at most once per DefaultMinGCInterval), and
// samples again, so refusals end as soon as the garbage and the reclaimable are gone.
func (l *Limiter) Check() {
	l.mu.Lock()
	defer l.mu.Unlock()
	used := l.opts.readMemory()
	if used > l.limit && time.Since(l.lastGC) >= l.opts.minGCInterval {
		l.lastGC = time.Now()
		if l.opts.Reclaim != nil {
			l.opts.Reclaim()
			l.reclaims.Add(1)
		}
		runtime.GC()
		l.gcs.Add(1)
		used = l.opts.readMemory()
	}
	l.used.Store(used)
	over := used > l.limit
	if was := l.over.Swap(over); was != over {
		if over {
			l.log.Warn("memory above the soft limit: refusing requests until it drops",
				"used_mib", used>>20, "limit_mib", l.limit>>20)
		} else {
			l.log.Info("memory below the soft limit again: accepting requests",
				"used_mib", used>>20, "limit_mib", l.limit>>20, "refused_total", l.refused.Load())
		}
	}
}

// Over reports whether the last sample was above the limit.
func (l *Limiter) Over() bool { return l.over.Load() }

// Limit returns the soft limit in bytes.
func (l *Limiter) Limit() uint64 { return l.limit }

// Used returns the last sampled memory use in bytes.
func (l *Limiter) Used() uint64 { return l.used.Load() }

// Refused returns how many requests were refused.
func (l *Limiter) Refused() int64 { return l.refused.Load() }

// ForcedGCs returns how many garbage collections the limiter forced.
func (l *Limiter) ForcedGCs() int64 { return l.gcs.Load() }

// Reclaims returns how many times the limiter called Reclaim.
func (l *Limiter) Reclaims() int64 { return l.reclaims.Load() }

// refuse counts a refusal and reports whether to refuse.
func (l *Limiter) refuse() bool {
	if !l.over.Load() {
		return false
	}
	l.refused.Add(1)
	return true
}

// Err returns the gRPC status error sent to refused senders: Unavailable with a
// RetryInfo detail carrying the retry delay.
func (l *Limiter) Err() error {
	st := status.New(codes.Unavailable, fmt.Sprintf("stwbridge is above its memory limit (%d MiB); retry after %v", l.limit>>20, l.opts.RetryAfter))
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(l.opts.RetryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}

// healthService is the gRPC health service's method prefix: health checks are never
// refused.
const healthService = "/grpc.health.v1.Health/"

// UnaryServerInterceptor refuses unary calls while memory is above the limit (health
// checks excepted).
func (l *Limiter) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, healthService) && l.refuse() {
			return nil, l.Err()
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor refuses new streams while memory is above the limit (health
// watches excepted).
func (l *Limiter) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, healthService) && l.refuse() {
			return l.Err()
		}
		return handler(srv, ss)
	}
}

// Middleware answers 503 with Retry-After while memory is above the limit.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	secs := strconv.Itoa(int(math.Ceil(l.opts.RetryAfter.Seconds())))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.refuse() {
			w.Header().Set("Retry-After", secs)
			http.Error(w, "stwbridge is above its memory limit; retry later", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}
