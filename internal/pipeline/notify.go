package pipeline

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"orderflow/internal/orders"
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
// up to the payload's Upto, in order, recording each delivery.
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
		r, err := h.cfg.Store.Get(ctx, k)
		if err != nil {
			return err // ErrNotFound included: retried, then archived with the reason
		}
		i := r.Notified
		if i >= n.Upto || i >= len(r.History) || r.Request.CallbackURL == "" {
			return nil
		}
		ev := r.History[i]
		body, _ := json.Marshal(Event{
			Provider: r.Provider, OutOrderID: r.OutOrderID, State: string(ev.State),
			At: ev.At.UTC().Format(time.RFC3339Nano), ProviderOrderID: strings.Join(r.ProviderOrderIDs, ","),
			Error: errorText(r, ev), Seq: i + 1,
		})
		if err := h.post(ctx, r.Request.CallbackURL, body); err != nil {
			log.Warn("callback failed; retried with backoff", "seq", i+1, "state", ev.State, "err", err)
			return err
		}
		if _, err := h.cfg.Store.Update(ctx, k, func(r *orders.Record) error {
			if r.Notified > i {
				return orders.ErrNoChange
			}
			r.Notified = i + 1
			return nil
		}); err != nil {
			return err
		}
	}
}

func errorText(r *orders.Record, ev orders.Transition) string {
	if !ev.State.Terminal() || r.Error == nil {
		return ""
	}
	return r.Error.Code + ": " + r.Error.Message
}

func (h *Handlers) post(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return skip("callbackUrl unusable: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "orderflow")
	if h.cfg.CallbackSecret != "" {
		req.Header.Set(SignatureHeader, Sign(h.cfg.CallbackSecret, body))
	}
	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST callbackUrl: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST callbackUrl: HTTP %d", resp.StatusCode)
	}
	return nil
}
