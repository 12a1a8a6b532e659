// Package xportcn is the orderflow client of Xportcn's OpenAPI (the
// "bigMajor / AlibabaMajorClientOrderController" order endpoints over 1688).
//
// It signs every call with the MD5 header signature (Sign), unwraps the
// {requestId, code, developId, msg, data} envelope, keeps amounts in integer
// fen, and returns errors of the classes of package providers: transient,
// throttled (with the wait asked for), auth, permanent (with the provider's
// code and message), unknown outcome (a create whose answer never came) and
// providers.ErrNotFound. ParsePush decodes the provider's push messages.
//
// The create, details, list and cancel shapes are inferred
// (docs/providers.md, "Xportcn: operations"); paths and the timestamp unit
// are settings.
package xportcn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"orderflow/providers"
)

// The timestamp units of Config.TimestampUnit.
const (
	UnitSeconds = "s"
	UnitMillis  = "ms"
)

// The default paths (docs/providers.md, "Xportcn: base URL and paths":
// preview confirmed, the others inferred).
const (
	DefaultPreviewPath = "/alibaba/majorClient/order/create/preview"
	DefaultCreatePath  = "/alibaba/majorClient/order/create"
	DefaultDetailPath  = "/alibaba/majorClient/order/detail"
	DefaultListPath    = "/alibaba/majorClient/order/list"
	DefaultCancelPath  = "/alibaba/majorClient/order/cancel"
)

// DefaultTimeout is the per-request timeout when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxBody bounds how much of an answer the client reads.
const maxBody = 8 << 20

// Config configures a Client. Zero values are documented per field.
type Config struct {
	// BaseURL is the API root, e.g. https://www.xportcn.com/api (required,
	// http or https); the paths are appended to it.
	BaseURL string
	// AccessKey is the developer's access key (required).
	AccessKey string
	// AccessSecret signs the requests (required). It is never sent, logged,
	// printed by %v, or put in an error string.
	AccessSecret string
	// UserID is sent as the user-id header (a sub-account; not signed).
	// Empty sends an empty header.
	UserID string
	// TimestampUnit is the unit of the timestamp header: "s" (the default
	// when empty) or "ms".
	TimestampUnit string
	// Paths are the endpoint paths; zero fields take the defaults.
	Paths Paths
	// Timeout bounds each request; zero means DefaultTimeout (10 s).
	Timeout time.Duration
	// HTTPClient sends the requests; nil means a new http.Client on
	// providers.NewTransport.
	HTTPClient *http.Client
	// Admit, when set, is called right before each request beyond the
	// first of one operation (the further pages of a lookup's listing), so
	// they spend the shared quota too; its error ends the operation. The
	// first request is admitted by whatever stands in front of the client.
	Admit func(ctx context.Context) error
}

// Paths are the endpoint paths appended to Config.BaseURL. Each must start
// with "/"; an empty field takes the Default…Path constant.
type Paths struct{ Preview, Create, Detail, List, Cancel string }

// redacted replaces a secret wherever a Config is printed or logged.
const redacted = "[REDACTED]"

// LogValue renders c for log/slog with AccessSecret redacted.
func (c Config) LogValue() slog.Value {
	secret := ""
	if c.AccessSecret != "" {
		secret = redacted
	}
	return slog.GroupValue(
		slog.String("baseURL", c.BaseURL),
		slog.String("accessKey", c.AccessKey),
		slog.String("accessSecret", secret),
		slog.String("userID", c.UserID),
		slog.String("timestampUnit", c.TimestampUnit),
		slog.Any("paths", c.Paths),
		slog.Duration("timeout", c.Timeout),
	)
}

// String renders c with AccessSecret redacted, so %v and %s never leak it.
func (c Config) String() string {
	secret := ""
	if c.AccessSecret != "" {
		secret = redacted
	}
	return fmt.Sprintf("xportcn.Config{BaseURL:%q AccessKey:%q AccessSecret:%q UserID:%q TimestampUnit:%q Paths:%+v Timeout:%s}",
		c.BaseURL, c.AccessKey, secret, c.UserID, c.TimestampUnit, c.Paths, c.Timeout)
}

// GoString is String, so %#v does not leak AccessSecret either.
func (c Config) GoString() string { return c.String() }

// ConfigError is an invalid Config: Field names the offending field.
type ConfigError struct {
	Field  string
	Reason string
}

// Error names the field and what is wrong with it.
func (e *ConfigError) Error() string { return "xportcn: config " + e.Field + ": " + e.Reason }

// validate checks c and fills in the defaults.
func (c *Config) validate() error {
	bad := func(field, format string, a ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if c.BaseURL == "" {
		return bad("BaseURL", "is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("BaseURL", "must be an absolute http(s) URL, got %q", c.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("BaseURL", "must not carry a query or fragment, got %q", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if strings.TrimSpace(c.AccessKey) == "" {
		return bad("AccessKey", "is required")
	}
	if c.AccessSecret == "" {
		return bad("AccessSecret", "is required")
	}
	switch c.TimestampUnit {
	case "":
		c.TimestampUnit = UnitSeconds
	case UnitSeconds, UnitMillis:
	default:
		return bad("TimestampUnit", `must be "s" or "ms", got %q`, c.TimestampUnit)
	}
	for _, p := range []struct {
		name string
		v    *string
		def  string
	}{
		{"Paths.Preview", &c.Paths.Preview, DefaultPreviewPath},
		{"Paths.Create", &c.Paths.Create, DefaultCreatePath},
		{"Paths.Detail", &c.Paths.Detail, DefaultDetailPath},
		{"Paths.List", &c.Paths.List, DefaultListPath},
		{"Paths.Cancel", &c.Paths.Cancel, DefaultCancelPath},
	} {
		if *p.v == "" {
			*p.v = p.def
		}
		if !strings.HasPrefix(*p.v, "/") {
			return bad(p.name, `must start with "/", got %q`, *p.v)
		}
	}
	switch {
	case c.Timeout < 0:
		return bad("Timeout", "must not be negative, got %s", c.Timeout)
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: providers.NewTransport()}
	}
	return nil
}

// Client calls Xportcn's order endpoints. It is safe for concurrent use.
type Client struct {
	cfg Config
	// now is the clock of the timestamp header and of Retry-After dates.
	now func() time.Time
}

var _ providers.Provider = (*Client)(nil)

// New validates cfg (the error is a *ConfigError naming the field) and
// returns a Client.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, now: time.Now}, nil
}

// Name returns providers.Xportcn.
func (c *Client) Name() string { return providers.Xportcn }

// The operation names carried in errors' Op.
const (
	opPreview = "xportcn preview"
	opCreate  = "xportcn create"
	opList    = "xportcn list"
	opDetail  = "xportcn details"
	opTrace   = "xportcn trace"
	opCancel  = "xportcn cancel"
)

// call POSTs in as JSON to path, checks the answer, and decodes the
// envelope's data into out (when out is not nil: then a missing data is an
// error). It returns the successful envelope. Errors are classified by
// classify.go; create is the one operation whose request, once written,
// never comes back as transient.
func (c *Client) call(ctx context.Context, op, path string, in, out any) (*envelope, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", op, err)
	}
	isCreate := op == opCreate

	reqCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var wrote atomic.Bool
	reqCtx = httptrace.WithClientTrace(reqCtx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, c.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if err := c.sign(req.Header); err != nil {
		return nil, &providers.TransientError{Op: op, Err: fmt.Errorf("nonce: %w", err)}
	}

	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, op, isCreate && wrote.Load(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		// The request was answered, so it was written.
		return nil, c.transportError(ctx, op, isCreate, fmt.Errorf("read answer: %w", err))
	}
	env, err := c.checkAnswer(op, isCreate, resp, raw)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return env, nil
	}
	if !env.hasData() {
		return nil, c.malformed(op, isCreate, errors.New("answer without data"))
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return nil, c.malformed(op, isCreate, fmt.Errorf("decode data: %w", err))
	}
	return env, nil
}
