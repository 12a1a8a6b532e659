package xportcn

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"orderflow/internal/redact"
	"orderflow/providers"
)

// APIError is an envelope code that is not success, as the provider sent
// it. It is wrapped inside the transient and unknown-outcome errors (match it
// with errors.As to read the code); permanent, auth and throttled refusals
// carry the code in their own fields instead.
type APIError struct {
	// Code is the envelope's code, or the HTTP status when the answer had
	// no envelope.
	Code int64
	// Message is the envelope's msg (or the HTTP status text).
	Message string
	// RequestID is the envelope's requestId, when given.
	RequestID string
}

// Error renders the code, message and request id (never a secret).
func (e *APIError) Error() string {
	if e.RequestID != "" {
		return fmt.Sprintf("code %d: %s (requestId %s)", e.Code, e.Message, e.RequestID)
	}
	return fmt.Sprintf("code %d: %s", e.Code, e.Message)
}

// transportError classifies an error of sending a request or reading its
// answer. written is true when the request of a create may have reached the
// provider. A context the caller cancelled is returned as its error,
// wrapped; but for a create already written it is also an
// UnknownOutcomeError (which still matches errors.Is(err, context.Canceled)):
// the order may exist, and saying otherwise could make a caller create it
// twice.
func (c *Client) transportError(ctx context.Context, op string, written bool, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		if written {
			return &providers.UnknownOutcomeError{Op: op, Err: fmt.Errorf("caller gave up after the request was sent: %w", cerr)}
		}
		return fmt.Errorf("%s: %w", op, cerr)
	}
	err = c.scrub(err)
	if written {
		return &providers.UnknownOutcomeError{Op: op, Err: err}
	}
	return &providers.TransientError{Op: op, Err: err}
}

// malformed classifies an answer that could not be read: transient, or an
// unknown outcome for a create (the provider answered, so the request
// arrived, but what it did is not known).
func (c *Client) malformed(op string, isCreate bool, err error) error {
	err = fmt.Errorf("malformed answer: %w", err)
	if isCreate {
		return &providers.UnknownOutcomeError{Op: op, Err: err}
	}
	return &providers.TransientError{Op: op, Err: err}
}

// checkAnswer classifies an HTTP answer and returns its envelope when the
// envelope says success. Only the provider's own envelope can refuse: an
// answer without one is a gateway's, never permanent.
//
//   - HTTP 429: throttled, Wait from Retry-After (seconds or an HTTP date).
//   - HTTP 5xx, 408 and 499 (whatever the body): transient; on create,
//     unknown outcome (a gateway gave up on a provider that may have
//     committed).
//   - Other non-2xx: classified by the envelope's code when the body is an
//     envelope with an error code (so HTTP 401 + envelope 401 is auth);
//     else a gateway answer: transient, on create unknown outcome (a wrong
//     path must not read as "no such order", nor fail an order for good).
//   - 2xx: a body that is not an envelope (HTML, not JSON, JSON without a
//     code) is malformed: transient, on create unknown outcome; an
//     envelope error code is classified by classifyCode.
func (c *Client) checkAnswer(op string, isCreate bool, resp *http.Response, raw []byte) (*envelope, error) {
	st := resp.StatusCode
	if st == http.StatusTooManyRequests {
		return nil, providers.Throttled(op, "HTTP_429", c.retryAfter(resp.Header))
	}
	if gatewayStatus(st) {
		return nil, c.gateway(op, isCreate, st, "")
	}
	var env envelope
	envErr := json.Unmarshal(raw, &env)
	if envErr == nil && env.Code == nil {
		envErr = fmt.Errorf("envelope without code: %s", c.scrubString(snippet(raw)))
	}
	if st < 200 || st > 299 {
		if envErr == nil && !env.ok() {
			return nil, c.classifyCode(op, isCreate, &env, resp.Header)
		}
		return nil, c.gateway(op, isCreate, st, "no provider envelope with an error code")
	}
	if envErr != nil {
		return nil, c.malformed(op, isCreate, envErr)
	}
	if !env.ok() {
		return nil, c.classifyCode(op, isCreate, &env, resp.Header)
	}
	return &env, nil
}

// statusClientClosed is nginx's 499 "client closed request": a gateway gave
// up waiting for the provider.
const statusClientClosed = 499

// gatewayStatus reports whether an HTTP status is a gateway's or a
// server's failure whatever the body says: 5xx, 408 and 499.
func gatewayStatus(st int) bool {
	return st >= 500 || st == http.StatusRequestTimeout || st == statusClientClosed
}

// gateway classifies an answer that is not the provider's envelope:
// transient, or an unknown outcome for a create (the request arrived
// somewhere; whether the provider made the order is not known).
func (c *Client) gateway(op string, isCreate bool, st int, why string) error {
	msg := http.StatusText(st)
	if st == statusClientClosed {
		msg = "Client Closed Request"
	}
	if why != "" {
		msg += " (" + why + ")"
	}
	err := &APIError{Code: int64(st), Message: msg}
	if isCreate {
		return &providers.UnknownOutcomeError{Op: op, Err: err}
	}
	return &providers.TransientError{Op: op, Err: err}
}

// classifyCode classifies an envelope error code (docs/providers.md):
// 429 throttled; 401/403 auth; 404 providers.ErrNotFound (for details,
// list and cancel; a preview or create answering 404 is permanent);
// 500..599 transient (on create, unknown outcome); 400 and any other code
// permanent, carrying the code and msg (for 400, the 1688 word its msg
// starts with, if any: see leadingBizCode).
func (c *Client) classifyCode(op string, isCreate bool, env *envelope, h http.Header) error {
	code := int64(*env.Code)
	msg := redact.ProviderText(c.scrubString(env.Msg)) // bounded, echoed credentials hidden
	apiErr := &APIError{Code: code, Message: msg, RequestID: string(env.RequestID)}
	codeText := strconv.FormatInt(code, 10)
	switch {
	case code == codeThrottled:
		return providers.Throttled(op, codeText, c.retryAfter(h))
	case code == codeUnauthorized || code == codeForbidden:
		return &providers.AuthError{Op: op, Code: codeText, Message: msg}
	case code == codeNotFound && op != opPreview && op != opCreate:
		return fmt.Errorf("%s: %w: %w", op, providers.ErrNotFound, apiErr)
	case code >= 500 && code <= 599:
		if isCreate {
			return &providers.UnknownOutcomeError{Op: op, Err: apiErr}
		}
		return &providers.TransientError{Op: op, Err: apiErr}
	}
	if code == codeBadParameter {
		if word := leadingBizCode(msg); word != "" {
			codeText = word
		}
	}
	return &providers.PermanentError{Op: op, Code: codeText, Message: msg}
}

// leadingBizCode returns the 1688 business word ("500_004", "500_2") that
// starts msg, followed by a colon, a space or nothing; else "". A refusal
// under code 400 whose msg starts with one (a create refused for a cart
// line) is reported under that word, the same code a preview line gives.
func leadingBizCode(msg string) string {
	i := 0
	for i < len(msg) && i < 3 && msg[i] >= '0' && msg[i] <= '9' {
		i++
	}
	if i != 3 || i >= len(msg) || msg[i] != '_' {
		return ""
	}
	j := i + 1
	for j < len(msg) && j < i+4 && msg[j] >= '0' && msg[j] <= '9' {
		j++
	}
	if j == i+1 || (j < len(msg) && msg[j] != ':' && msg[j] != ' ') {
		return ""
	}
	return msg[:j]
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date.
// Absent, malformed or past means zero (the provider did not say).
func (c *Client) retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 || n > int64(24*time.Hour/time.Second) {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(c.now()); d > 0 {
			return d
		}
	}
	return 0
}

// scrubString removes the access secret from text that came from outside
// (a provider's msg could echo a request back).
func (c *Client) scrubString(s string) string {
	if c.cfg.AccessSecret == "" {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.AccessSecret, redacted)
}

// scrub returns err, or a plain error with the secret removed when err's
// text would carry it (it never should: the secret is never sent).
func (c *Client) scrub(err error) error {
	if err == nil || c.cfg.AccessSecret == "" || !strings.Contains(err.Error(), c.cfg.AccessSecret) {
		return err
	}
	return fmt.Errorf("%s", c.scrubString(err.Error()))
}

// snippet quotes the start of a body for an error message.
func snippet(b []byte) string {
	const n = 120
	if len(b) > n {
		b = b[:n]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
		return strconv.Quote(string(b)) + "…"
	}
	return strconv.Quote(string(b))
}
