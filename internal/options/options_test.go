package options

import (
	"log/slog"
	"testing"
	"time"
)

type testOptions struct {
	N      int
	D      time.Duration
	Logger *slog.Logger
}

type testOption func(*testOptions)

func TestApplyInOrderSkippingNil(t *testing.T) {
	opts := []testOption{
		func(o *testOptions) { o.N = 1 },
		nil,
		func(o *testOptions) { o.N *= 5 },
		func(o *testOptions) { o.D = time.Second },
	}
	got := Apply(opts)
	if got.N != 5 || got.D != time.Second || got.Logger != nil {
		t.Fatalf("Apply = %+v, want N 5, D 1s, no logger", got)
	}
	if zero := Apply[testOptions, testOption](nil); zero != (testOptions{}) {
		t.Fatalf("Apply(nil) = %+v, want the zero Options", zero)
	}
}

func TestPositive(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{-3, 7}, {0, 7}, {1, 1}, {9, 9}} {
		v := tc.in
		Positive(&v, 7)
		if v != tc.want {
			t.Errorf("Positive(%d, 7) = %d, want %d", tc.in, v, tc.want)
		}
	}
	d := -time.Second
	Positive(&d, time.Minute)
	if d != time.Minute {
		t.Errorf("Positive(-1s, 1m) = %v, want 1m", d)
	}
}

func TestNonZero(t *testing.T) {
	def := slog.New(slog.DiscardHandler)
	var l *slog.Logger
	NonZero(&l, def)
	if l != def {
		t.Errorf("NonZero(nil logger) did not set the default")
	}
	other := slog.Default()
	NonZero(&other, def)
	if other != slog.Default() {
		t.Errorf("NonZero replaced a logger that was set")
	}
	for _, tc := range []struct{ in, want int }{{0, 4}, {-1, -1}, {2, 2}} {
		v := tc.in
		NonZero(&v, 4)
		if v != tc.want {
			t.Errorf("NonZero(%d, 4) = %d, want %d", tc.in, v, tc.want)
		}
	}
}
