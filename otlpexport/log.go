package otlpexport

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logInterval is the least time between two log lines of one kind; the lines left out
// in between are counted in the next one.
const logInterval = 10 * time.Second

// rateLog writes at most one line per kind (key) every logInterval.
type rateLog struct {
	logger *slog.Logger
	mu     sync.Mutex
	kinds  map[string]*logKind
}

type logKind struct {
	last       time.Time
	suppressed int
}

func newRateLog(l *slog.Logger) *rateLog {
	return &rateLog{logger: l, kinds: map[string]*logKind{}}
}

// log writes msg at level unless a line of the same key went out less than
// logInterval ago; then it only counts it.
func (r *rateLog) log(level slog.Level, key, msg string, attrs ...slog.Attr) {
	now := time.Now()
	r.mu.Lock()
	k := r.kinds[key]
	if k == nil {
		k = &logKind{}
		r.kinds[key] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < logInterval {
		k.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	r.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("similar_lines_suppressed", suppressed))
	}
	r.logger.LogAttrs(context.Background(), level, msg, attrs...)
}
