package pipeline

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"orderflow/providers"
	"orderflow/tasks"
)

func TestIsFailureAndRetryDelay(t *testing.T) {
	for _, c := range []struct {
		name    string
		err     error
		failure bool
		wait    time.Duration // exact for deferrals
		lo, hi  time.Duration // bounds otherwise
	}{
		{"defer", &providers.DeferError{Reason: "poll", Wait: 3 * time.Second}, false, 3 * time.Second, 0, 0},
		{"gate defer wrapped", fmt.Errorf("x: %w", &providers.DeferError{Reason: providers.ReasonRateLimit, Wait: 2 * time.Second}), false, 2 * time.Second, 0, 0},
		{"provider throttled", &providers.DeferError{Wait: time.Second}, false, time.Second, 0, 0},
		{"zero wait floored", &providers.DeferError{Wait: 0}, false, minDefer, 0, 0},
		{"transient", &providers.TransientError{Op: "x", Err: errors.New("boom")}, true, 0, backoffBase << 3 / 2, backoffBase << 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := IsFailure(c.err); got != c.failure {
				t.Fatalf("IsFailure = %v, want %v", got, c.failure)
			}
			d := RetryDelay(3, c.err, nil)
			if c.wait != 0 && d != c.wait {
				t.Fatalf("RetryDelay = %v, want %v", d, c.wait)
			}
			if c.wait == 0 && (d < c.lo || d > c.hi) {
				t.Fatalf("RetryDelay = %v, want in [%v, %v]", d, c.lo, c.hi)
			}
		})
	}
	if d := RetryDelay(100, errors.New("x"), nil); d > DefaultBackoffMax {
		t.Fatalf("RetryDelay(100) = %v, over the cap %v", d, DefaultBackoffMax)
	}
	// RETRY_BACKOFF_MAX caps the doubling; a deferral keeps its own wait.
	upTo := RetryDelayUpTo(10 * time.Second)
	for n := range 30 {
		if d := upTo(n, errors.New("x"), nil); d > 10*time.Second || n >= 4 && d < 5*time.Second {
			t.Fatalf("RetryDelayUpTo(10s)(%d) = %v, want in [5s, 10s] from the 4th failure on", n, d)
		}
	}
	if d := upTo(9, &providers.DeferError{Wait: time.Minute}, nil); d != time.Minute {
		t.Fatalf("a deferral of 1m under RetryDelayUpTo(10s) waits %v, want 1m", d)
	}
	if d := RetryDelayUpTo(0)(19, errors.New("x"), nil); d < DefaultBackoffMax/2 {
		t.Fatalf("RetryDelayUpTo(0)(19) = %v, want the default cap's", d)
	}
}

func TestCombine(t *testing.T) {
	st := func(id string, s providers.State, raw string) *providers.OrderStatus {
		return &providers.OrderStatus{OrderID: id, State: s, Raw: raw}
	}
	for _, c := range []struct {
		name string
		in   []*providers.OrderStatus
		want providers.State
		raw  string
	}{
		{"one", []*providers.OrderStatus{st("1", providers.StatePaid, "waitsellersend")}, providers.StatePaid, "waitsellersend"},
		{"least advanced live part", []*providers.OrderStatus{
			st("1", providers.StateShipped, "waitbuyerreceive"), st("2", providers.StatePaid, "waitsellersend")},
			providers.StatePaid, "1=waitbuyerreceive,2=waitsellersend"},
		{"live part beats an ended one", []*providers.OrderStatus{
			st("1", providers.StateCompleted, "success"), st("2", providers.StateShipped, "waitbuyerreceive")},
			providers.StateShipped, "1=success,2=waitbuyerreceive"},
		{"all ended, one completed", []*providers.OrderStatus{
			st("1", providers.StateCancelled, "cancel"), st("2", providers.StateCompleted, "success")},
			providers.StateCompleted, "1=cancel,2=success"},
		{"unknown word keeps the state", []*providers.OrderStatus{
			st("1", providers.StateUnknown, "waitlogisticstakein"), st("2", providers.StatePaid, "waitsellersend")},
			providers.StateUnknown, "1=waitlogisticstakein,2=waitsellersend"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, raw := combine(c.in)
			if got != c.want || raw != c.raw {
				t.Fatalf("combine = %q, %q; want %q, %q", got, raw, c.want, c.raw)
			}
		})
	}
}

func TestNewPreviewTask(t *testing.T) {
	req := providers.OrderRequest{Provider: providers.Depal, OutOrderID: "UP-1",
		Address: providers.Address{FullName: "Li Lei", Mobile: "1", Address: "x"},
		Items:   []providers.Item{{ProductID: 1, Quantity: 1}}}
	task, err := tasks.NewPreviewTask(req)
	if err != nil {
		t.Fatal(err)
	}
	if task.Type() != tasks.TypePreview {
		t.Fatalf("type %q", task.Type())
	}
	req.Items = nil
	var fe *providers.FieldError
	if _, err := tasks.NewPreviewTask(req); !errors.As(err, &fe) || fe.Field != "items" {
		t.Fatalf("invalid order: err = %v, want a FieldError on items", err)
	}
}
