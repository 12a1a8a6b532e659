package providers

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels.
var (
	// ErrNotFound: the provider has no such order (Lookup), or no parcel
	// trace yet (Trace: poll later). Not a failure.
	ErrNotFound = errors.New("providers: not found")
)

// Class is what a caller does about an error.
type Class int

// The error classes (PROVIDERS.md, "Error classes the worker must tell apart").
const (
	// ClassNone: no error.
	ClassNone Class = iota
	// ClassTransient: retry with backoff, counted as an attempt.
	ClassTransient
	// ClassThrottled: defer for the wait given, not an attempt.
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

// ThrottledError is the provider saying "too many requests". Wait is how
// long it asked for (zero when it did not say).
type ThrottledError struct {
	Op   string
	Wait time.Duration
	Code string
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%s: throttled (code %s), retry after %s", e.Op, e.Code, e.Wait)
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
// came (timeout, dropped connection). The order may exist.
type UnknownOutcomeError struct {
	Op  string
	Err error
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("%s: outcome unknown: %v", e.Op, e.Err)
}
func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

// ClassOf tells which class err belongs to. Errors of no known class (a
// context cancelled, a bug) are transient.
func ClassOf(err error) Class {
	if err == nil {
		return ClassNone
	}
	var (
		th *ThrottledError
		au *AuthError
		pe *PermanentError
		uo *UnknownOutcomeError
	)
	switch {
	case errors.As(err, &uo):
		return ClassUnknownOutcome
	case errors.As(err, &th):
		return ClassThrottled
	case errors.As(err, &pe):
		return ClassPermanent
	case errors.As(err, &au):
		return ClassAuth
	}
	return ClassTransient
}
