// Package depal is the orderflow client of Depal's Open API: the
// access-token cache (system.token.get, one refresh at a time, one retry on
// 510), HMAC-SHA1 request signing over the exact body bytes, the
// {code, msg, data, requestId} envelope, yuan strings converted exactly to
// fen, and Depal's codes mapped to the error classes of package providers.
//
// The shapes are those of docs/providers.md ("Depal Open API"); where
// Depal's docs are silent (submit, details, cancel) the client uses the
// inferred shapes marked there, which the simulator shares, and accepts a
// few harmless variations (a code or id sent as a JSON number, an amount
// sent as a bare number).
package depal

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
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"orderflow/internal/redact"
	"orderflow/providers"
	"orderflow/providers/internal/wirejson"
)

// maxBody bounds how much of an answer the client reads.
const maxBody = 4 << 20

// shanghai is China Standard Time (UTC+8, no daylight saving since 1991),
// the zone of Depal's trace dates. A fixed zone needs no tzdata.
var shanghai = time.FixedZone("Asia/Shanghai", 8*60*60)

// traceDateLayout is the layout of a logistics.tracking event date.
const traceDateLayout = "2006-01-02 15:04:05"

// Config is a Depal client's configuration. Zero values are documented per
// field; New validates it and names the first bad field.
type Config struct {
	// BaseURL is the API root, e.g. https://openapi.sg-inc.depal.pro
	// (required). It may carry a path prefix ("http://host/depal"); the
	// signed path still starts at "/openapi/".
	BaseURL string
	// AppKey is the application key (required). It must be path-safe: it
	// is part of every URL and of the signed path.
	AppKey string
	// AppSecret is the application secret (required): the signing key and
	// the token.get credential. It never appears in an error or a log.
	AppSecret string
	// Timeout bounds each HTTP request; zero means 10s.
	Timeout time.Duration
	// TokenMargin is how long before expiresAt the token is refreshed;
	// zero means 60s.
	TokenMargin time.Duration
	// CancelMethod is the cancel method name; zero means
	// DefaultCancelMethod ("1688.order.cancel").
	CancelMethod string
	// HTTPClient sends the requests; nil means a new http.Client on
	// providers.NewTransport. Its own
	// Timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client
	// Admit, when set, is called right before each request the client
	// sends beyond the one call its caller admitted: a token fetch, the
	// resend after a 510, the trace after a ref-less Trace's details, and
	// the call itself when it had to wait for a token fetch (its caller's
	// admission went stale meanwhile and is left unused). It is called with
	// the token already in hand, so no fetch comes between an admission and
	// its request. It blocks until the request may go under the provider's
	// shared quota, or returns why not. Nil: no extra admission.
	Admit func(ctx context.Context) error
}

// LogValue renders c for log/slog with AppSecret redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("app_key", c.AppKey),
		slog.String("app_secret", redacted(c.AppSecret)),
		slog.Duration("timeout", c.Timeout),
		slog.Duration("token_margin", c.TokenMargin),
		slog.String("cancel_method", c.CancelMethod),
	)
}

// String renders c for fmt's %v and %s with AppSecret redacted.
func (c Config) String() string {
	return fmt.Sprintf("depal.Config{BaseURL:%q AppKey:%q AppSecret:%s Timeout:%s TokenMargin:%s CancelMethod:%q}",
		c.BaseURL, c.AppKey, redacted(c.AppSecret), c.Timeout, c.TokenMargin, c.CancelMethod)
}

// GoString renders c for fmt's %#v with AppSecret redacted.
func (c Config) GoString() string { return c.String() }

// redacted hides a secret, telling only whether one is set.
func redacted(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "REDACTED"
}

// Client is a Depal Open API client. It is safe for concurrent use.
type Client struct {
	cfg    Config
	base   string // BaseURL without a trailing slash
	http   *http.Client
	now    func() time.Time
	tokens *tokenCache
}

var _ providers.Provider = (*Client)(nil)

// New validates cfg, fills in the documented defaults and returns a client.
// An invalid field is reported by name; the secret never is.
func New(cfg Config) (*Client, error) {
	bad := func(field, reason string) error {
		return fmt.Errorf("depal: Config.%s: %s", field, reason)
	}
	if strings.TrimSpace(cfg.BaseURL) == "" {
		return nil, bad("BaseURL", "is required")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, bad("BaseURL", fmt.Sprintf("must be an absolute http(s) URL, got %q", cfg.BaseURL))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, bad("BaseURL", "must not carry a query, a fragment or user info")
	}
	if cfg.AppKey == "" {
		return nil, bad("AppKey", "is required")
	}
	if url.PathEscape(cfg.AppKey) != cfg.AppKey {
		return nil, bad("AppKey", fmt.Sprintf("must be URL path-safe, got %q", cfg.AppKey))
	}
	if cfg.AppSecret == "" {
		return nil, bad("AppSecret", "is required")
	}
	switch {
	case cfg.Timeout < 0:
		return nil, bad("Timeout", "must not be negative")
	case cfg.Timeout == 0:
		cfg.Timeout = 10 * time.Second
	}
	switch {
	case cfg.TokenMargin < 0:
		return nil, bad("TokenMargin", "must not be negative")
	case cfg.TokenMargin == 0:
		cfg.TokenMargin = 60 * time.Second
	}
	if cfg.CancelMethod == "" {
		cfg.CancelMethod = DefaultCancelMethod
	}
	if url.PathEscape(cfg.CancelMethod) != cfg.CancelMethod {
		return nil, bad("CancelMethod", fmt.Sprintf("must be URL path-safe, got %q", cfg.CancelMethod))
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: providers.NewTransport()}
	}
	c := &Client{
		cfg:  cfg,
		base: strings.TrimRight(cfg.BaseURL, "/"),
		http: hc,
		now:  time.Now,
	}
	c.tokens = &tokenCache{c: c}
	return c, nil
}

// Name returns providers.Depal.
func (c *Client) Name() string { return providers.Depal }

// Preview prices the cart with 1688.order.create.preview.
func (c *Client) Preview(ctx context.Context, req *providers.OrderRequest) (*providers.Quote, error) {
	const op = "depal preview"
	env, hdr, err := c.call(ctx, op, methodPreview, previewBodyOf(req), false)
	if err != nil {
		return nil, err
	}
	if err := c.classify(op, env, hdr, false); err != nil {
		return nil, err
	}
	var d previewData
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return nil, &providers.TransientError{Op: op, Err: fmt.Errorf("depal: preview data: %w", err)}
	}
	q, err := quoteOf(&d)
	if err != nil {
		return nil, &providers.TransientError{Op: op, Err: err}
	}
	return q, nil
}

// quoteOf maps a preview answer to a Quote. goods, each line's price and
// amount, and the previewId are required; an absent freight or service
// amount is 0.
func quoteOf(d *previewData) (*providers.Quote, error) {
	if d.PreviewID == "" {
		return nil, errors.New("depal: preview answered without a previewId")
	}
	q := &providers.Quote{PreviewID: d.PreviewID}
	var err error
	if q.Goods, err = parseAmount("productTotalAmount", d.ProductTotalAmount, true); err != nil {
		return nil, err
	}
	if q.Freight, err = parseAmount("freightTotalAmount", d.FreightTotalAmount, false); err != nil {
		return nil, err
	}
	if q.Service, err = parseAmount("serviceTotalAmount", d.ServiceTotalAmount, false); err != nil {
		return nil, err
	}
	q.Total = q.Goods + q.Freight + q.Service
	for i, l := range d.CargoList {
		line := providers.QuoteLine{SkuID: l.SkuID, Quantity: l.Quantity}
		if l.ProductID != "" {
			if line.ProductID, err = strconv.ParseInt(string(l.ProductID), 10, 64); err != nil {
				return nil, fmt.Errorf("depal: preview cargoList[%d].productId %q is not an integer", i, string(l.ProductID))
			}
		}
		if line.UnitPrice, err = parseAmount(fmt.Sprintf("cargoList[%d].price", i), l.Price, true); err != nil {
			return nil, err
		}
		if line.Amount, err = parseAmount(fmt.Sprintf("cargoList[%d].amount", i), l.Amount, true); err != nil {
			return nil, err
		}
		q.Lines = append(q.Lines, line)
	}
	return q, nil
}

// previewBodyOf maps an order request to a preview body.
func previewBodyOf(req *providers.OrderRequest) previewBody {
	a := req.Address
	phone := a.Mobile
	if strings.TrimSpace(phone) == "" {
		phone = a.Phone
	}
	var parts []string
	for _, p := range []string{a.District, a.Town, a.Address} {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	b := previewBody{
		OutOrderID: req.OutOrderID,
		Address: wireAddress{
			UserName: a.FullName,
			Phone:    phone,
			Country:  a.Country,
			Province: a.Province,
			City:     a.City,
			Address:  strings.Join(parts, " "),
			PostCode: a.PostCode,
		},
		CargoList: make([]wireCargo, 0, len(req.Items)),
	}
	for _, it := range req.Items {
		b.CargoList = append(b.CargoList, wireCargo{ProductID: it.ProductID, SkuID: it.SkuID, Quantity: it.Quantity})
	}
	return b
}

// Create submits the previewed order (1688.order.create.order: the preview
// body plus q.PreviewID). A previewId that already produced an order
// answers code 1010 with that order: it is returned as the Placement. A
// request that left without an answer (dropped connection, timeout,
// HTTP 5xx, envelope 5xx) is a *providers.UnknownOutcomeError.
func (c *Client) Create(ctx context.Context, req *providers.OrderRequest, q *providers.Quote) (*providers.Placement, error) {
	const op = "depal create"
	if q == nil || q.PreviewID == "" {
		return nil, &providers.PermanentError{Op: op, Code: "NO_PREVIEW_ID", Message: "a Depal create needs the previewId of a preview"}
	}
	body := submitBody{previewBody: previewBodyOf(req), PreviewID: q.PreviewID}
	env, hdr, err := c.call(ctx, op, methodSubmit, body, true)
	if err != nil {
		return nil, err
	}
	code := strings.TrimSpace(string(env.Code))
	if code == codeCreateFailed && env.hasData() {
		var d submitData
		if json.Unmarshal(env.Data, &d) == nil && len(d.ids()) > 0 {
			return c.placement(&d), nil
		}
	}
	if err := c.classify(op, env, hdr, true); err != nil {
		return nil, err
	}
	var d submitData
	if err := json.Unmarshal(env.Data, &d); err != nil || len(d.ids()) == 0 {
		// A success without a readable order id ({"code":"200","data":{}}):
		// the order was probably made, so the caller must look it up rather
		// than create again.
		return nil, &providers.UnknownOutcomeError{Op: op, Err: errors.New("depal: submit succeeded without an orderId")}
	}
	if err := providers.CheckProviderOrderIDs(d.ids()...); err != nil {
		// the order may exist under an id we will not store: look it up
		return nil, &providers.UnknownOutcomeError{Op: op, Err: err}
	}
	return c.placement(&d), nil
}

// placement is the Placement of a submit answer naming orders: its ids,
// and the lines its failedOfferList refused beside them.
func (c *Client) placement(d *submitData) *providers.Placement {
	p := &providers.Placement{OrderIDs: d.ids()}
	for _, f := range d.FailedOfferList {
		pid, _ := strconv.ParseInt(strings.TrimSpace(string(f.OfferID)), 10, 64)
		code := strings.TrimSpace(string(f.ErrorCode))
		if code == "" {
			code = codeCreateFailed
		}
		p.Rejected = append(p.Rejected, providers.RejectedItem{ProductID: pid, SkuID: string(f.SpecID), Code: code, Message: redact.ProviderText(c.scrubText(f.ErrorMessage))})
	}
	return p
}

// Lookup finds the order created for outOrderID (details by outOrderId).
// Code 640 (no such order) is providers.ErrNotFound, the only "none" Depal
// gives. A success that does not name an order (data null or {}, no
// orderId), or names one whose outOrderId is not exactly outOrderID (a
// filter ignored, or no outOrderId at all), is providers.ErrAmbiguous
// inside a *providers.TransientError: don't know, never "not found" and
// never an order to adopt.
func (c *Client) Lookup(ctx context.Context, outOrderID string) (*providers.Placement, error) {
	const op = "depal lookup"
	d, err := c.detail(ctx, op, detailBody{OutOrderID: outOrderID}, true)
	if err != nil {
		return nil, err
	}
	ambiguous := func(why string) error {
		return &providers.TransientError{Op: op, Err: fmt.Errorf("outOrderId %q: %s: %w", outOrderID, why, providers.ErrAmbiguous)}
	}
	switch {
	case d == nil:
		return nil, ambiguous("success without data")
	case d.OrderID == "":
		return nil, ambiguous("success without an orderId")
	case !providers.ValidProviderOrderID(string(d.OrderID)):
		return nil, ambiguous(providers.CheckProviderOrderIDs(string(d.OrderID)).Error())
	case d.OutOrderID != outOrderID:
		return nil, ambiguous(fmt.Sprintf("order %s carries outOrderId %q", string(d.OrderID), d.OutOrderID))
	}
	total, err := detailTotal(d)
	if err != nil {
		return nil, &providers.TransientError{Op: op, Err: err}
	}
	return &providers.Placement{OrderIDs: []string{string(d.OrderID)}, Total: total}, nil
}

// Details fetches one order's status. An unknown status word is
// StateUnknown with Raw kept, not an error. Lines come from orderItemList
// (nil when the answer has none); an item without a positive integer
// productId or an integer quantity of at least 1 is a malformed answer, a
// *providers.TransientError, as a malformed amount is.
func (c *Client) Details(ctx context.Context, orderID string) (*providers.OrderStatus, error) {
	const op = "depal details"
	d, err := c.detail(ctx, op, detailBody{OrderID: orderID}, false)
	if err != nil {
		return nil, err
	}
	total, err := detailTotal(d)
	if err != nil {
		return nil, &providers.TransientError{Op: op, Err: err}
	}
	lines, err := linesOf(d.OrderItemList)
	if err != nil {
		return nil, &providers.TransientError{Op: op, Err: err}
	}
	if d.OrderID != "" {
		if err := providers.CheckProviderOrderIDs(string(d.OrderID)); err != nil {
			return nil, &providers.TransientError{Op: op, Err: err}
		}
	}
	st := &providers.OrderStatus{OrderID: string(d.OrderID), Raw: d.Status, Total: total, Lines: lines}
	if st.OrderID == "" {
		st.OrderID = orderID
	}
	st.State, _ = providers.MapStatus(d.Status)
	if l := d.Logistics; l != nil && l.LogisticNo != "" {
		st.Parcel = &providers.ParcelRef{Carrier: l.ChannelCode, BillNo: l.LogisticNo}
	}
	return st, nil
}

// linesOf reads a details answer's orderItemList: nil for none (no list,
// null or empty: the provider did not say), else every item in order.
func linesOf(items []orderItem) ([]providers.OrderLine, error) {
	if len(items) == 0 {
		return nil, nil
	}
	lines := make([]providers.OrderLine, 0, len(items))
	for i, it := range items {
		l, err := wirejson.OrderLine(fmt.Sprintf("depal: details orderItemList[%d]", i), it.ProductID, it.SkuID, it.Quantity)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l)
	}
	return lines, nil
}

// detailTotal sums a details answer's amounts (absent ones count 0).
func detailTotal(d *detailData) (int64, error) {
	var total int64
	for _, a := range []struct {
		field string
		v     yuan
	}{
		{"productTotalAmount", d.ProductTotalAmount},
		{"freightTotalAmount", d.FreightTotalAmount},
		{"serviceTotalAmount", d.ServiceTotalAmount},
	} {
		fen, err := parseAmount(a.field, a.v, false)
		if err != nil {
			return 0, err
		}
		total += fen
	}
	return total, nil
}

// detail calls 1688.order.detail. With notFound (Lookup), code 640 is
// providers.ErrNotFound and a success without data is (nil, nil);
// otherwise 640 is a permanent error and no data a transient one.
func (c *Client) detail(ctx context.Context, op string, body detailBody, notFound bool) (*detailData, error) {
	env, hdr, err := c.call(ctx, op, methodDetail, body, false)
	if err != nil {
		return nil, err
	}
	if notFound && strings.TrimSpace(string(env.Code)) == codeEmptyData {
		return nil, fmt.Errorf("%s: code 640: %w", op, providers.ErrNotFound)
	}
	if err := c.classify(op, env, hdr, false); err != nil {
		return nil, err
	}
	if !env.hasData() {
		if notFound {
			return nil, nil // Lookup tells "no data" apart from an empty object
		}
		return nil, &providers.TransientError{Op: op, Err: errors.New("depal: details answered without data")}
	}
	var d detailData
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return nil, &providers.TransientError{Op: op, Err: fmt.Errorf("depal: details data: %w", err)}
	}
	return &d, nil
}

// Trace fetches the parcel trace (logistics.tracking). With ref nil it
// reads the parcel from the order's details first; an order not yet
// shipped, a 640 answer or an empty trace is providers.ErrNotFound (poll
// later). The latest event is the parcel status.
func (c *Client) Trace(ctx context.Context, orderID string, ref *providers.ParcelRef) (*providers.Parcel, error) {
	const op = "depal trace"
	if ref == nil {
		st, err := c.Details(ctx, orderID)
		if err != nil {
			return nil, err
		}
		if st.Parcel == nil {
			return nil, fmt.Errorf("%s %s: no parcel yet: %w", op, orderID, providers.ErrNotFound)
		}
		ref = st.Parcel
		// The details call spent the caller's admission; the trace is a
		// second request.
		if err := c.admit(ctx); err != nil {
			return nil, err
		}
	}
	env, hdr, err := c.call(ctx, op, methodLogistics, logisticsBody{ChannelCode: ref.Carrier, LogisticNo: ref.BillNo}, false)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(env.Code)) == codeEmptyData {
		return nil, fmt.Errorf("%s %s: code 640: %w", op, ref.BillNo, providers.ErrNotFound)
	}
	if err := c.classify(op, env, hdr, false); err != nil {
		return nil, err
	}
	var events []traceEvent
	if env.hasData() {
		if err := json.Unmarshal(env.Data, &events); err != nil {
			return nil, &providers.TransientError{Op: op, Err: fmt.Errorf("depal: trace data: %w", err)}
		}
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%s %s: empty trace: %w", op, ref.BillNo, providers.ErrNotFound)
	}
	p := &providers.Parcel{ParcelRef: *ref}
	for i, e := range events {
		at, err := time.ParseInLocation(traceDateLayout, strings.TrimSpace(e.Date), shanghai)
		if err != nil {
			return nil, &providers.TransientError{Op: op, Err: fmt.Errorf("depal: trace data[%d].date %q is not %q", i, e.Date, traceDateLayout)}
		}
		p.Steps = append(p.Steps, providers.TraceStep{At: at, Event: e.Event, Memo: e.Memo})
	}
	p.Status = events[len(events)-1].Event
	return p, nil
}

// Cancel cancels an unpaid order (Config.CancelMethod, {orderId,
// cancelReason} → data true). A refusal is a permanent error.
func (c *Client) Cancel(ctx context.Context, orderID, reason string) error {
	const op = "depal cancel"
	env, hdr, err := c.call(ctx, op, c.cfg.CancelMethod, cancelBody{OrderID: orderID, CancelReason: reason}, false)
	if err != nil {
		return err
	}
	if err := c.classify(op, env, hdr, false); err != nil {
		return err
	}
	var ok bool
	if err := json.Unmarshal(env.Data, &ok); err != nil {
		return &providers.TransientError{Op: op, Err: fmt.Errorf("depal: cancel data is not a boolean: %w", err)}
	}
	if !ok {
		return &providers.PermanentError{Op: op, Code: "CANCEL_REFUSED", Message: c.scrubText(env.Msg)}
	}
	return nil
}

// call signs and POSTs body to method with a cached token, refreshing the
// token and retrying once on code 510; a second 510 is a
// *providers.AuthError. The envelope it returns may carry any other code:
// the caller classifies it.
func (c *Client) call(ctx context.Context, op, method string, body any, create bool) (*envelope, http.Header, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, &providers.PermanentError{Op: op, Code: "ENCODE", Message: err.Error()}
	}
	for attempt := 0; ; attempt++ {
		// The token comes first, the admission right before the send: a
		// grant must not be held across a token fetch, which itself waits
		// for the quota. The caller admitted the first request; when it
		// had to wait for a fetch, that grant is stale (the requests held
		// behind a fetch would all leave together when it lands), so the
		// request asks again and the stale grant goes unused.
		tok, fetched, err := c.tokens.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		if attempt > 0 || fetched {
			if err := c.admit(ctx); err != nil {
				return nil, nil, err
			}
		}
		env, hdr, err := c.send(ctx, op, method, raw, tok, create)
		if err != nil {
			return nil, nil, err
		}
		if strings.TrimSpace(string(env.Code)) != codeTokenExpired {
			return env, hdr, nil
		}
		if attempt > 0 {
			return nil, nil, &providers.AuthError{Op: op, Code: codeTokenExpired,
				Message: "token expired again right after a refresh: " + c.scrubText(env.Msg)}
		}
		c.tokens.invalidate(tok)
	}
}

// admit asks Config.Admit, when set, for one more request under the
// provider's shared quota.
func (c *Client) admit(ctx context.Context) error {
	if c.cfg.Admit == nil {
		return nil
	}
	return c.cfg.Admit(ctx)
}

// send makes one signed POST of raw. Transport failures, HTTP 429, HTTP
// 408/499/5xx and answers that are not a Depal envelope (or a success
// envelope under an error status) are classified here; for a create, any
// of them after the request was written is an unknown outcome.
func (c *Client) send(ctx context.Context, op, method string, raw []byte, tok string, create bool) (*envelope, http.Header, error) {
	path := "/openapi/1/" + c.cfg.AppKey + "/" + method
	ts := strconv.FormatInt(c.now().UnixMilli(), 10)

	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var wrote atomic.Bool
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.base+path, bytes.NewReader(raw))
	if err != nil {
		return nil, nil, &providers.PermanentError{Op: op, Code: "CONFIG", Message: c.scrubText(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-depal-timestamp", ts)
	req.Header.Set("x-depal-access-token", tok)
	req.Header.Set("x-depal-signature", Sign(c.cfg.AppSecret, path, ts, tok, raw))

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, c.transportError(ctx, op, err, create && wrote.Load())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		// An answer had begun: the request was certainly received.
		return nil, nil, c.transportError(ctx, op, err, create)
	}
	if err := httpStatusError(op, resp, c.now(), create); err != nil {
		return nil, nil, err
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || strings.TrimSpace(string(env.Code)) == "" {
		return nil, nil, undecodable(op, resp.StatusCode, "the answer is not a Depal envelope", create)
	}
	if ok := resp.StatusCode >= 200 && resp.StatusCode <= 299; !ok && strings.TrimSpace(string(env.Code)) == codeOK {
		return nil, nil, undecodable(op, resp.StatusCode, "a success envelope under an error status", create)
	}
	return &env, resp.Header, nil
}

// statusClientClosed is nginx's 499 "client closed request": a gateway gave
// up waiting for the provider.
const statusClientClosed = 499

// httpStatusError classifies an HTTP answer by status alone: 429 is
// throttled; 5xx, 408 and 499 are a gateway's or a server's failure,
// whatever the body says: transient, for a create an unknown outcome.
// Other statuses return nil: the envelope decides.
func httpStatusError(op string, resp *http.Response, now time.Time, create bool) error {
	st := resp.StatusCode
	switch {
	case st == http.StatusTooManyRequests:
		return providers.Throttled(op, "HTTP_429", retryAfter(resp.Header, now))
	case st >= 500 || st == http.StatusRequestTimeout || st == statusClientClosed:
		return undecodable(op, st, statusText(st), create)
	}
	return nil
}

// statusText is the text of an HTTP status, 499 included.
func statusText(st int) string {
	if st == statusClientClosed {
		return "Client Closed Request"
	}
	return http.StatusText(st)
}

// undecodable classifies an answer that is not Depal's own envelope (a
// gateway's HTML, a bare status, JSON without a code): never a refusal of
// the provider, so transient, and for a create an unknown outcome (the
// request arrived somewhere; the order may have been made).
func undecodable(op string, status int, why string, create bool) error {
	err := &APIError{Code: "HTTP_" + strconv.Itoa(status), Message: why}
	if create {
		return &providers.UnknownOutcomeError{Op: op, Err: err}
	}
	return &providers.TransientError{Op: op, Err: err}
}

// transportError classifies a failed round trip. The caller's own context
// ending is returned as its error (wrapped), except for a create whose
// request was written: that stays an unknown outcome (which still wraps
// the context error), since the order may exist.
func (c *Client) transportError(ctx context.Context, op string, err error, written bool) error {
	err = c.scrub(err)
	switch {
	case written:
		return &providers.UnknownOutcomeError{Op: op, Err: err}
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", op, err)
	}
	return &providers.TransientError{Op: op, Err: err}
}

// APIError is a Depal answer that is not a success: its envelope code (or
// "HTTP_<status>") and message. It is the Err inside the transient and
// unknown-outcome errors the client returns.
type APIError struct {
	Code      string
	Message   string
	RequestID string
}

func (e *APIError) Error() string {
	s := "depal: code " + e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (requestId " + e.RequestID + ")"
	}
	return s
}

// apiError is env as an *APIError, its message scrubbed of secrets.
func (c *Client) apiError(env *envelope) *APIError {
	return &APIError{Code: strings.TrimSpace(string(env.Code)), Message: c.scrubText(env.Msg), RequestID: env.RequestID}
}

// r500 finds a preview error word inside a message.
var r500 = regexp.MustCompile(`R500_\d+`)

// isSystemError reports whether code is a numeric 5xx system error (500,
// 502, ...), 510 (token expired) excepted.
func isSystemError(code string) bool {
	n, err := strconv.Atoi(code)
	return err == nil && n >= 500 && n <= 599 && code != codeTokenExpired
}

// classify maps a non-success envelope to its error class:
//
//	R500_* as the code, or inside msg under 1000/1010  → permanent, Code R500_*
//	1000, 1010 (no R500_* word), 620, 630, 640, other  → permanent
//	600                                                 → throttled (Retry-After, else 1s)
//	510 (after the retry), 610                          → auth
//	500..599                                            → transient; for a create, unknown outcome
//
// It returns nil for "200".
func (c *Client) classify(op string, env *envelope, hdr http.Header, create bool) error {
	code := redact.ProviderText(strings.TrimSpace(string(env.Code)))
	msg := redact.ProviderText(c.scrubText(env.Msg)) // bounded, echoed credentials hidden
	switch {
	case code == codeOK:
		return nil
	case strings.HasPrefix(code, "R500_"):
		return &providers.PermanentError{Op: op, Code: code, Message: msg}
	case code == codePreviewFailed || code == codeCreateFailed:
		if w := r500.FindString(msg); w != "" {
			return &providers.PermanentError{Op: op, Code: w, Message: msg}
		}
		return &providers.PermanentError{Op: op, Code: code, Message: msg}
	case code == codeRateLimited:
		return providers.Throttled(op, code, retryAfter(hdr, c.now()))
	case code == codeBadSignature || code == codeTokenExpired:
		return &providers.AuthError{Op: op, Code: code, Message: msg}
	case isSystemError(code):
		if create {
			return &providers.UnknownOutcomeError{Op: op, Err: c.apiError(env)}
		}
		return &providers.TransientError{Op: op, Err: c.apiError(env)}
	}
	// 620 bad header, 630 bad parameter, 640 empty data, and codes no doc
	// lists: the provider refused this request as it is.
	return &providers.PermanentError{Op: op, Code: code, Message: msg}
}

// retryAfter reads an HTTP Retry-After header (seconds or an HTTP date);
// Depal's 600 carries no wait, so without one it is 1s.
func retryAfter(h http.Header, now time.Time) time.Duration {
	const fallback = time.Second
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return fallback
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return fallback
}

// scrub removes the secret from err. net/http returns a *url.Error that
// embeds the request URL, and the token URL carries appSecret in its
// query: the URL is rebuilt with that value redacted, keeping the error
// chain (a context error stays matchable with errors.Is). Any other error
// still naming a secret is flattened to text with the secret replaced.
func (c *Client) scrub(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	if s := err.Error(); s != c.scrubText(s) {
		return errors.New(c.scrubText(s))
	}
	return err
}

// scrubText replaces the app secret, and the current token, in s.
func (c *Client) scrubText(s string) string {
	if c.cfg.AppSecret != "" {
		s = strings.ReplaceAll(s, c.cfg.AppSecret, "REDACTED")
		s = strings.ReplaceAll(s, url.QueryEscape(c.cfg.AppSecret), "REDACTED")
	}
	if c.tokens != nil {
		c.tokens.mu.Lock()
		tok := c.tokens.token
		c.tokens.mu.Unlock()
		if tok != "" {
			s = strings.ReplaceAll(s, tok, "REDACTED")
		}
	}
	return s
}

// redactURL returns raw with its appSecret query value replaced.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(url redacted)"
	}
	q := u.Query()
	if q.Has("appSecret") {
		q.Set("appSecret", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
