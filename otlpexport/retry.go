package otlpexport

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// retryable tells whether a failed export may be tried again, per the OTLP spec, and
// the wait the server asked for in a google.rpc.RetryInfo (hasDelay false when none).
func retryable(err error) (retry bool, delay time.Duration, hasDelay bool) {
	st, ok := status.FromError(err)
	if !ok {
		// Not a gRPC status: a transport problem the next attempt may not have.
		return true, 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			delay, hasDelay = ri.GetRetryDelay().AsDuration(), true
			if delay < 0 {
				delay = 0
			}
		}
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange,
		codes.Unavailable, codes.DataLoss:
		return true, delay, hasDelay
	case codes.ResourceExhausted:
		// Only a server that says when to come back is throttling; otherwise the
		// request itself is too big or the quota is gone for good.
		return hasDelay, delay, hasDelay
	}
	return false, 0, false
}

// throttled is a retryable error with the server's requested wait: it unwraps both to
// the gRPC error and to the backoff package's RetryAfterError, which makes
// backoff.Retry wait exactly that long.
type throttled struct {
	err   error
	after *backoff.RetryAfterError
}

func (t *throttled) Error() string   { return t.err.Error() }
func (t *throttled) Unwrap() []error { return []error{t.err, t.after} }

// retrier runs an attempt until it succeeds, fails for good, or the policy gives up.
type retrier struct {
	cfg RetryConfig
	// onRetry is called before each wait, with the error and the wait.
	onRetry func(err error, wait time.Duration)
}

// do runs attempt, retrying retryable errors. It returns the number of attempts and
// the last error. A cancelled ctx (Shutdown's deadline) ends the retries at once.
func (r *retrier) do(ctx context.Context, attempt func(context.Context) error) (int, error) {
	attempts := 0
	op := func() (struct{}, error) {
		attempts++
		err := attempt(ctx)
		if err == nil {
			return struct{}{}, nil
		}
		retry, delay, hasDelay := retryable(err)
		switch {
		case !retry:
			return struct{}{}, backoff.Permanent(err)
		case hasDelay:
			return struct{}{}, &throttled{err: err, after: &backoff.RetryAfterError{Duration: delay}}
		}
		return struct{}{}, err
	}
	opts := []backoff.RetryOption{backoff.WithNotify(func(err error, wait time.Duration) {
		if r.onRetry != nil {
			r.onRetry(err, wait)
		}
	})}
	if !r.cfg.Enabled {
		opts = append(opts, backoff.WithMaxTries(1))
	} else {
		opts = append(opts,
			backoff.WithBackOff(&backoff.ExponentialBackOff{
				InitialInterval:     r.cfg.InitialInterval,
				RandomizationFactor: 0.5,
				Multiplier:          1.5,
				MaxInterval:         r.cfg.MaxInterval,
			}),
			// Zero means no limit, in RetryConfig as in the backoff package.
			backoff.WithMaxElapsedTime(r.cfg.MaxElapsedTime),
		)
	}
	_, err := backoff.Retry(ctx, op, opts...)
	var t *throttled
	if errors.As(err, &t) {
		err = t.err
	}
	return attempts, err
}
