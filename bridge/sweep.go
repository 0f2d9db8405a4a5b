package bridge

import (
	"context"
	"sync"
	"time"
)

// Every calls f every interval on a goroutine of its own until stop is called. stop
// waits for a call in progress; later calls of stop do nothing.
func Every(interval time.Duration, f func()) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				f()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// AssemblerTail is a Tail that assembles its events into spans for a SpanConsumer,
// sweeping its Assembler every interval (see Assembler.Sweep). Shutdown stops the
// sweep and emits the spans still open as unfinished.
type AssemblerTail struct {
	*Assembler
	stopSweep func()
}

var (
	_ Tail       = (*AssemblerTail)(nil)
	_ Shutdowner = (*AssemblerTail)(nil)
)

// NewAssemblerTail returns an AssemblerTail handing its spans to next; sweepEvery
// must be positive. Errors of the periodic sweep are passed to onSweepErr when it is
// not nil.
func NewAssemblerTail(next SpanConsumer, sweepEvery time.Duration, onSweepErr func(error), opts ...AssemblerOption) *AssemblerTail {
	t := &AssemblerTail{Assembler: NewAssembler(next, opts...)}
	t.stopSweep = Every(sweepEvery, func() {
		if err := t.Sweep(context.Background()); err != nil && onSweepErr != nil {
			onSweepErr(err)
		}
	})
	return t
}

// Shutdown stops the sweep, then emits the spans still open as unfinished
// (Assembler.Shutdown).
func (t *AssemblerTail) Shutdown(ctx context.Context) error {
	t.stopSweep()
	return t.Assembler.Shutdown(ctx)
}

// Suspend stops the sweep, then forgets the spans still open (Assembler.Suspend).
func (t *AssemblerTail) Suspend(ctx context.Context) error {
	t.stopSweep()
	return t.Assembler.Suspend(ctx)
}
