package depal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"orderflow/providers"
)

// tokenCache holds the access token and refreshes it one fetch at a time:
// however many goroutines need a token while none is valid, exactly one
// system.token.get is in flight and all of them share its result.
type tokenCache struct {
	c *Client

	mu      sync.Mutex
	token   string
	expires time.Time  // expiresAt as Depal said it
	flight  *tokenCall // the fetch in progress, nil when none
}

// tokenCall is one system.token.get and its result, shared by every
// goroutine that waited for it. done is closed once tok/err are set.
type tokenCall struct {
	done chan struct{}
	tok  string
	err  error
}

// get returns a token valid for at least TokenMargin more, fetching a new
// one when needed; fetched reports that the caller waited for a fetch (its
// own or another goroutine's). It returns the caller's context error
// (wrapped) if ctx ends while waiting; the fetch itself goes on for the
// other waiters.
func (t *tokenCache) get(ctx context.Context) (tok string, fetched bool, err error) {
	t.mu.Lock()
	if t.token != "" && t.c.now().Before(t.expires.Add(-t.c.cfg.TokenMargin)) {
		tok := t.token
		t.mu.Unlock()
		return tok, false, nil
	}
	call := t.flight
	if call == nil {
		call = &tokenCall{done: make(chan struct{})}
		t.flight = call
		// The fetch runs on its own deadline, detached from this caller's
		// cancellation, because other callers may be waiting for it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.c.cfg.Timeout)
		go func() {
			defer cancel()
			tok, exp, err := t.c.fetchToken(fctx)
			t.mu.Lock()
			if err == nil {
				t.token, t.expires = tok, exp
			} else {
				// Every waiter gets this one failure: a breaker counts it once.
				err = &providers.SharedError{Err: err}
			}
			call.tok, call.err = tok, err
			t.flight = nil
			t.mu.Unlock()
			close(call.done)
		}()
	}
	t.mu.Unlock()

	select {
	case <-call.done:
		// A token fresh from the provider is used even when its expiresAt
		// is already inside the margin: the provider just handed it out.
		return call.tok, true, call.err
	case <-ctx.Done():
		return "", true, fmt.Errorf("depal: token: %w", ctx.Err())
	}
}

// invalidate forgets tok after the provider answered 510 (token expired)
// for it. A token fetched since then by another goroutine is kept, so many
// concurrent 510s for one token cause one refresh.
func (t *tokenCache) invalidate(tok string) {
	t.mu.Lock()
	if t.token == tok {
		t.token = ""
	}
	t.mu.Unlock()
}

// fetchToken calls GET {BaseURL}/openapi/auth/{appKey}/system.token.get.
// Its URL carries appSecret, so every transport error is scrubbed before it
// is wrapped. Refusals other than throttling and system errors are
// *providers.AuthError: the key or secret is wrong.
func (c *Client) fetchToken(ctx context.Context) (string, time.Time, error) {
	const op = "depal token.get"
	if c.cfg.Admit != nil {
		if err := c.cfg.Admit(ctx); err != nil {
			return "", time.Time{}, err
		}
	}
	u := c.base + "/openapi/auth/" + c.cfg.AppKey + "/system.token.get?" +
		url.Values{"appSecret": {c.cfg.AppSecret}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", time.Time{}, &providers.AuthError{Op: op, Code: "CONFIG", Message: c.scrubText(err.Error())}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", time.Time{}, &providers.TransientError{Op: op, Err: c.scrub(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", time.Time{}, &providers.TransientError{Op: op, Err: c.scrub(err)}
	}
	if err := httpStatusError(op, resp, c.now(), false); err != nil {
		return "", time.Time{}, err
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Code == "" {
		// A gateway's answer (HTML, a bare status) is not Depal refusing the
		// credentials: transient, like any other answer without an envelope.
		return "", time.Time{}, &providers.TransientError{Op: op, Err: fmt.Errorf("depal: token.get answer is not a Depal envelope (HTTP %d)", resp.StatusCode)}
	}
	code := strings.TrimSpace(string(env.Code))
	switch {
	case code == codeOK:
	case code == codeRateLimited:
		return "", time.Time{}, providers.Throttled(op, code, retryAfter(resp.Header, c.now()))
	case isSystemError(code):
		return "", time.Time{}, &providers.TransientError{Op: op, Err: c.apiError(&env)}
	default:
		return "", time.Time{}, &providers.AuthError{Op: op, Code: code, Message: c.scrubText(env.Msg)}
	}
	var d tokenData
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return "", time.Time{}, &providers.TransientError{Op: op, Err: fmt.Errorf("depal: token.get data: %w", err)}
	}
	ms, err := strconv.ParseInt(string(d.ExpiresAt), 10, 64)
	if d.AccessToken == "" || err != nil || ms <= 0 {
		return "", time.Time{}, &providers.TransientError{Op: op,
			Err: fmt.Errorf("depal: token.get answered without an accessToken or a valid expiresAt (%q)", string(d.ExpiresAt))}
	}
	return d.AccessToken, time.UnixMilli(ms), nil
}
