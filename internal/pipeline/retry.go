package pipeline

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/providers"
)

// deferralOf returns the wait of a deferral in err's chain.
func deferralOf(err error) (time.Duration, bool) {
	d, ok := providers.AsDeferral(err)
	if !ok {
		return 0, false
	}
	return d.Wait, true
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
	// DefaultBackoffMax is RETRY_BACKOFF_MAX's default: the longest wait
	// between two runs of a failing step.
	DefaultBackoffMax = 5 * time.Minute
	// minDefer keeps a zero wait from spinning.
	minDefer = 500 * time.Millisecond
)

// RetryDelay is asynq.Config.RetryDelayFunc: the wait of a deferral, else
// exponential backoff from 1 s doubling to 5 min, with full jitter on the
// upper half.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	return retryDelay(n, err, DefaultBackoffMax)
}

// RetryDelayUpTo is RetryDelay with the backoff doubling up to most
// instead of 5 min (RETRY_BACKOFF_MAX; most <= 0: 5 min). A deferral's
// wait is the deferral's, whatever most is.
func RetryDelayUpTo(most time.Duration) asynq.RetryDelayFunc {
	if most <= 0 {
		most = DefaultBackoffMax
	}
	return func(n int, err error, _ *asynq.Task) time.Duration { return retryDelay(n, err, most) }
}

func retryDelay(n int, err error, most time.Duration) time.Duration {
	if d, ok := deferralOf(err); ok {
		return max(d, minDefer)
	}
	d := most
	if n < 20 {
		d = min(backoffBase<<n, most)
	}
	return d/2 + rand.N(d/2+1)
}

// skip archives the task at once with a readable reason.
func skip(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), asynq.SkipRetry)
}
