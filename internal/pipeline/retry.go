package pipeline

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/gate"
	"orderflow/providers"
)

// DeferError asks asynq to run the task again after Wait without counting
// an attempt (see IsFailure and RetryDelay).
type DeferError struct {
	Reason string
	Wait   time.Duration
	Err    error
}

func (e *DeferError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("deferred %s (%s): %v", e.Wait, e.Reason, e.Err)
	}
	return fmt.Sprintf("deferred %s (%s)", e.Wait, e.Reason)
}

func (e *DeferError) Unwrap() error { return e.Err }

// deferralOf returns the wait of a deferral in err's chain: a DeferError,
// the gate's (rate limit, open breaker, provider throttling), or a
// provider's own ThrottledError.
func deferralOf(err error) (time.Duration, bool) {
	var d *DeferError
	if errors.As(err, &d) {
		return d.Wait, true
	}
	if g, ok := gate.IsDeferred(err); ok {
		return g.Wait, true
	}
	var th *providers.ThrottledError
	if errors.As(err, &th) {
		return th.Wait, true
	}
	return 0, false
}

// IsFailure is asynq.Config.IsFailure: a deferral is not a failure, so
// asynq retries it without counting an attempt.
func IsFailure(err error) bool {
	_, ok := deferralOf(err)
	return !ok
}

// Backoff bounds for failures.
const (
	backoffBase = time.Second
	backoffMax  = 5 * time.Minute
	// minDefer keeps a zero wait from spinning.
	minDefer = 500 * time.Millisecond
)

// RetryDelay is asynq.Config.RetryDelayFunc: the wait of a deferral, else
// exponential backoff from 1 s doubling to 5 min, with full jitter on the
// upper half.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if d, ok := deferralOf(err); ok {
		return max(d, minDefer)
	}
	d := backoffMax
	if n < 20 {
		d = min(backoffBase<<n, backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// skip archives the task at once with a readable reason.
func skip(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), asynq.SkipRetry)
}
