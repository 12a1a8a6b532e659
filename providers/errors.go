package providers

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinels.
var (
	// ErrNotFound: the provider has no such order (Lookup), or no parcel
	// trace yet (Trace: poll later). Not a failure. Lookup returns it only
	// when the provider said so explicitly and unambiguously (see
	// Provider.Lookup); any other failure of a lookup means "don't know".
	ErrNotFound = errors.New("providers: not found")

	// ErrAmbiguous: the provider answered, but the answer does not say
	// whether the order exists: a success without the data asked for (no
	// list, no order id), or a list whose entries are not ours (a filter it
	// ignored). Lookup returns it wrapped in a *TransientError: it is a
	// "don't know", never a "not found", and never an order to adopt.
	ErrAmbiguous = errors.New("providers: ambiguous answer")
)

// Class is what a caller does about an error.
type Class int

// The error classes (docs/providers.md, "Error classes").
const (
	// ClassNone: no error.
	ClassNone Class = iota
	// ClassTransient: retry with backoff, counted as an attempt.
	ClassTransient
	// ClassThrottled: a deferral (throttled, rate limit, open breaker):
	// wait as told, not an attempt.
	ClassThrottled
	// ClassAuth: credentials refused (after the client's own refresh).
	ClassAuth
	// ClassPermanent: fail the order with the provider's code.
	ClassPermanent
	// ClassUnknownOutcome: the request left and no answer came; look the
	// order up before sending again.
	ClassUnknownOutcome
)

func (c Class) String() string {
	switch c {
	case ClassNone:
		return "ok"
	case ClassTransient:
		return "transient"
	case ClassThrottled:
		return "throttled"
	case ClassAuth:
		return "auth"
	case ClassPermanent:
		return "permanent"
	case ClassUnknownOutcome:
		return "unknown_outcome"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// TransientError is a failure worth retrying: a network error before the
// request left, a timeout of a read-only call, HTTP 5xx, Depal 500.
type TransientError struct {
	Op  string
	Err error
}

func (e *TransientError) Error() string { return fmt.Sprintf("%s: transient: %v", e.Op, e.Err) }
func (e *TransientError) Unwrap() error { return e.Err }

// Deferral reasons, the values of DeferError.Reason.
const (
	// ReasonThrottled: the provider answered "too many requests".
	ReasonThrottled = "throttled"
	// ReasonRateLimit: the shared quota had no room soon enough.
	ReasonRateLimit = "rate_limit"
	// ReasonBreakerOpen: the provider's breaker is open (or half-open with
	// its probes in flight).
	ReasonBreakerOpen = "breaker_open"
)

// DeferError says "not now, try again after Wait": the provider throttled
// the call, the shared quota or the breaker did not let it out, or a step
// has to wait for another. It is never a failed attempt. The one deferral
// type of orderflow: match it with errors.As or AsDeferral.
type DeferError struct {
	// Provider and Op name the call, where there was one.
	Provider string
	Op       string
	// Reason is one of the Reason constants, or a pipeline step's own word.
	Reason string
	// Wait is how long to wait (zero: the provider did not say).
	Wait time.Duration
	// Code is the provider's own code of a throttle answer.
	Code string
	// Err is the cause, if any.
	Err error
}

func (e *DeferError) Error() string {
	s := "deferred (" + e.Reason + ")"
	if e.Provider != "" || e.Op != "" {
		s = strings.TrimPrefix(e.Provider+" "+e.Op, " ") + ": " + s
	}
	if e.Code != "" {
		s += " code " + e.Code
	}
	s += fmt.Sprintf(", retry in %s", e.Wait)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err.
func (e *DeferError) Unwrap() error { return e.Err }

// Throttled is the provider's "too many requests" answer to op: a
// DeferError with ReasonThrottled.
func Throttled(op, code string, wait time.Duration) *DeferError {
	return &DeferError{Op: op, Reason: ReasonThrottled, Code: code, Wait: wait}
}

// AsDeferral returns the deferral in err's chain, if any.
func AsDeferral(err error) (*DeferError, bool) {
	var d *DeferError
	ok := errors.As(err, &d)
	return d, ok
}

// AuthError is credentials the provider refused: a bad signature, a bad
// secret, or a token that stayed expired after one refresh.
type AuthError struct {
	Op      string
	Code    string
	Message string
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("%s: auth refused: code %s: %s", e.Op, e.Code, e.Message)
}

// PermanentError is a refusal that will not change on retry: a business
// error (R500_*), a bad parameter, a cart that cannot be ordered. Code and
// Message are the provider's own.
type PermanentError struct {
	Op      string
	Code    string
	Message string
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("%s: code %s: %s", e.Op, e.Code, e.Message)
}

// UnknownOutcomeError is a create whose request left but whose answer never
// came (timeout, dropped connection), or came in a form that is not the
// provider's own (a gateway's HTML, an HTTP 408/499/5xx, a body without the
// envelope's code), or said success without naming an order. The order may
// exist: look it up before any new create.
type UnknownOutcomeError struct {
	Op  string
	Err error
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("%s: outcome unknown: %v", e.Op, e.Err)
}
func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

// SharedError is one failure handed to several callers: a single-flight
// fetch (Depal's token) gives its error to every call that waited for it.
// It reads as the error it wraps, whose class it keeps; a circuit breaker
// counts it once, because one request to the provider failed, not one per
// caller.
type SharedError struct{ Err error }

func (e *SharedError) Error() string { return e.Err.Error() }
func (e *SharedError) Unwrap() error { return e.Err }

// ClassOf tells which class err belongs to. Errors of no known class (a
// context cancelled, a bug) are transient.
func ClassOf(err error) Class {
	if err == nil {
		return ClassNone
	}
	var (
		de *DeferError
		au *AuthError
		pe *PermanentError
		uo *UnknownOutcomeError
	)
	switch {
	case errors.As(err, &uo):
		return ClassUnknownOutcome
	case errors.As(err, &de):
		return ClassThrottled
	case errors.As(err, &pe):
		return ClassPermanent
	case errors.As(err, &au):
		return ClassAuth
	}
	return ClassTransient
}
