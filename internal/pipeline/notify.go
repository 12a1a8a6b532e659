package pipeline

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
	"orderflow/internal/redact"
	"orderflow/providers"
	"orderflow/tasks"
)

// SignatureHeader carries the callback body's HMAC-SHA256 under
// CALLBACK_SECRET, as "sha256=<hex>".
const SignatureHeader = "X-Orderflow-Signature"

// Event is the JSON body POSTed to an order's callbackUrl for each state
// change; its fields are those of the orderflow:events stream, plus Seq,
// the change's 1-based place in the order's history (deliveries are in
// order; a retried delivery may repeat a Seq: dedupe on it).
type Event struct {
	Provider        string `json:"provider"`
	OutOrderID      string `json:"outOrderId"`
	State           string `json:"state"`
	At              string `json:"at"`
	ProviderOrderID string `json:"providerOrderId,omitempty"`
	Error           string `json:"error,omitempty"`
	Seq             int    `json:"seq"`
	// Event and Note are set on a history entry that keeps the state (a
	// decision, a price change), Actor, Action and Reason on a person's
	// decision, as in the record.
	Event  string `json:"event,omitempty"`
	Note   string `json:"note,omitempty"`
	Actor  string `json:"actor,omitempty"`
	Action string `json:"action,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Sign returns the signature header value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// notifyRef is the payload of order:notify: deliver the order's history up
// to entry Upto.
type notifyRef struct {
	ref
	Upto int `json:"upto"`
}

// notifyLater enqueues the delivery of the record's undelivered history
// entries, when it has a callbackUrl. One task per history length, so a
// later change is never lost behind a delivery already running.
func (h *Handlers) notifyLater(ctx context.Context, r *orders.Record) error {
	return NotifyLater(ctx, h.cfg.Enqueuer, h.cfg.Inspector, r)
}

// NotifyLater is notifyLater for writers outside the handlers (a person's
// decision made by `enqueue`).
func NotifyLater(ctx context.Context, enq Enqueuer, insp TaskInspector, r *orders.Record) error {
	if r.Request.CallbackURL == "" || r.Notified >= len(r.History) {
		return nil
	}
	b, _ := json.Marshal(notifyRef{ref: ref{Provider: r.Provider, OutOrderID: r.OutOrderID}, Upto: len(r.History)})
	id := fmt.Sprintf("%s:%d", TaskID(tasks.TypeNotify, r.Key()), len(r.History))
	t := asynq.NewTask(tasks.TypeNotify, b,
		asynq.TaskID(id),
		asynq.Queue(tasks.QueueNotify),
		asynq.MaxRetry(notifyMaxRetry),
		asynq.Timeout(time.Minute))
	return Enqueue(ctx, enq, insp, Step{Task: t, Queue: tasks.QueueNotify, ID: id})
}

// notify POSTs the order's history entries from the first undelivered one
// up to the payload's Upto, in order, recording each attempt. Each
// delivery holds the order's delivery lock (lockNotify), so two notify
// tasks of one order never POST at the same time; one that finds the lock
// held is deferred.
func (h *Handlers) notify(ctx context.Context, t *asynq.Task) error {
	var n notifyRef
	if err := json.Unmarshal(t.Payload(), &n); err != nil {
		return skip("malformed %s payload: %v", t.Type(), err)
	}
	if n.Upto < 1 || !providers.Known(n.Provider) || !providers.ValidOutOrderID(n.OutOrderID) {
		return skip("malformed %s payload: provider %q / outOrderId %q / upto %d invalid", t.Type(), n.Provider, n.OutOrderID, n.Upto)
	}
	k := n.key()
	log := h.logger(ctx, t, &k)
	for {
		done, err := h.deliverNext(ctx, k, n.Upto, log)
		if done || err != nil {
			return err
		}
	}
}

// deliverNext delivers the order's first undelivered history entry, if it
// is before upto, under the order's delivery lock. done is true when there
// is nothing (more) to deliver.
func (h *Handlers) deliverNext(ctx context.Context, k orders.Key, upto int, log *slog.Logger) (done bool, err error) {
	release, ok, err := lockNotify(ctx, h.cfg.Store.Client(), k)
	if err != nil {
		return false, fmt.Errorf("callback lock: %w", err)
	}
	if !ok {
		return false, &providers.DeferError{Op: "notify", Reason: "delivery_in_flight", Wait: notifyBusyWait}
	}
	defer release()
	r, err := h.cfg.Store.Get(ctx, k)
	if err != nil {
		return false, err // ErrNotFound included: retried, then archived with the reason
	}
	i := r.Notified
	if i >= upto || i >= len(r.History) || r.Request.CallbackURL == "" {
		return true, nil
	}
	ev := r.History[i]
	e := Event{
		Provider: r.Provider, OutOrderID: r.OutOrderID, State: string(ev.State),
		At: ev.At.UTC().Format(time.RFC3339Nano), ProviderOrderID: strings.Join(r.ProviderOrderIDs, ","),
		Error: errorText(r, ev), Seq: i + 1,
		Event: ev.Event, Actor: ev.Actor, Action: ev.Action, Reason: ev.Reason,
	}
	if e.Event != "" || e.Actor != "" {
		e.Note = redact.ProviderText(ev.Note)
	}
	body, _ := json.Marshal(e)
	status, perr := h.post(ctx, r.Request.CallbackURL, body)
	d := orders.Delivery{At: h.cfg.Store.Now().UTC(), Seq: i + 1, Status: status}
	if perr != nil {
		d.Error = redact.ProviderText(perr.Error())
		if _, err := h.cfg.Store.Update(ctx, k, func(r *orders.Record) error {
			addDelivery(r, d)
			return nil
		}); err != nil {
			log.Warn("callback attempt not recorded", "seq", i+1, "err", err)
		}
		log.Warn("callback failed", "seq", i+1, "state", ev.State, "status", status, "err", perr)
		return false, perr
	}
	_, err = h.cfg.Store.Update(ctx, k, func(r *orders.Record) error {
		if r.Notified > i {
			return orders.ErrNoChange
		}
		r.Notified = i + 1
		addDelivery(r, d)
		return nil
	})
	return false, err
}

// addDelivery appends d to the record's deliveries, keeping the newest
// orders.MaxDeliveries.
func addDelivery(r *orders.Record, d orders.Delivery) {
	r.Deliveries = append(r.Deliveries, d)
	if n := len(r.Deliveries) - orders.MaxDeliveries; n > 0 {
		r.Deliveries = append([]orders.Delivery(nil), r.Deliveries[n:]...)
	}
}

func errorText(r *orders.Record, ev orders.Transition) string {
	if !ev.State.Terminal() || r.Error == nil {
		return ""
	}
	return redact.ProviderText(r.Error.Code + ": " + r.Error.Message)
}

// post POSTs body to url with the callback client and returns the HTTP
// status (0 when none came). A target the client refuses (RefusedTarget)
// archives the task: retrying would not change the answer.
func (h *Handlers) post(ctx context.Context, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, skip("callbackUrl unusable: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "orderflow")
	if h.cfg.CallbackSecret != "" {
		req.Header.Set(SignatureHeader, Sign(h.cfg.CallbackSecret, body))
	}
	resp, err := callbackClient(h.cfg.HTTPClient).Do(req)
	var refused *RefusedTargetError
	if errors.As(err, &refused) {
		return 0, fmt.Errorf("POST callbackUrl: %w: %w", refused, asynq.SkipRetry)
	}
	if err != nil {
		return 0, fmt.Errorf("POST callbackUrl: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("POST callbackUrl: HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// RefusedTargetError is a callback not sent: the address the callbackUrl
// resolved to is one providers.RefusedTarget refuses.
type RefusedTargetError struct {
	Addr   netip.Addr
	Reason string
}

func (e *RefusedTargetError) Error() string {
	return fmt.Sprintf("refused target %s (%s; CALLBACK_ALLOW_PRIVATE governs loopback and private targets)", e.Addr, e.Reason)
}

// CallbackClient returns the client that delivers callbacks: it connects
// only to addresses providers.RefusedTarget lets through (checked on the
// address dialled, after name resolution, so a name that resolves, or
// rebinds, to a refused address is refused), uses no proxy, follows no
// redirect (a 3xx is a failed delivery) and gives up after timeout.
func CallbackClient(allowPrivate bool, timeout time.Duration) *http.Client {
	return &http.Client{Transport: callbackTransport(allowPrivate), Timeout: timeout, CheckRedirect: noRedirect}
}

func callbackTransport(allowPrivate bool) *http.Transport {
	d := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("callback dial: unexpected address %q", address)
			}
			if why := providers.RefusedTarget(ap.Addr(), allowPrivate); why != "" {
				return &RefusedTargetError{Addr: ap.Addr().Unmap(), Reason: why}
			}
			return nil
		},
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = d.DialContext
	return tr
}

// refusingTransport is the transport of a callback client given without
// one (Config.HTTPClient nil or with a nil Transport): private targets
// refused.
var refusingTransport = callbackTransport(false)

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// callbackClient is c as callbacks use it: never following redirects, and
// with the refusing transport when c has none.
func callbackClient(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = noRedirect
	if cc.Transport == nil {
		cc.Transport = refusingTransport
	}
	return &cc
}
