package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/providers"
)

// POST /v1/orders/{provider}/{outOrderId}/review carries out a decision
// at once and answers what it did, with a status per outcome.
func TestReviewOverHTTP(t *testing.T) {
	const token = "tok"
	ts, b := adminServer(t, token)
	ctx := context.Background()
	st := b.w.Store()
	k := orders.Key{Provider: providers.Depal, OutOrderID: "HR-1"}
	if _, _, err := st.Create(ctx, order(k.Provider, k.OutOrderID)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, k, func(r *orders.Record) error {
		now := time.Now()
		r.Apply(providers.EventPreviewed, now, "")
		r.Apply(providers.EventParked, now, pipeline.ReasonOutcomeUnknown)
		r.CreateAttempts, r.CreateSentAt = 1, now.UTC()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	url := ts.URL + "/v1/orders/depal/HR-1/review"
	post := func(tok, body string) (int, pipeline.Decided) {
		t.Helper()
		code, b := do(t, "POST", url, tok, []byte(body))
		var d pipeline.Decided
		_ = json.Unmarshal(b, &d)
		return code, d
	}
	for _, c := range []struct {
		tok, body string
		code      int
	}{
		{"", `{"action":"close","by":"ana","reason":"x"}`, http.StatusUnauthorized},
		{token, `{"action":"explode","by":"ana"}`, http.StatusBadRequest},
		{token, `{"action":"close","by":"ana"}`, http.StatusBadRequest}, // close needs a reason
		{token, `{"action":"close","by":"ana","reason":"x","extra":1}`, http.StatusBadRequest},
	} {
		if code, _ := post(c.tok, c.body); code != c.code {
			t.Errorf("%s: %d, want %d", c.body, code, c.code)
		}
	}
	code, d := post(token, `{"action":"close","by":"ana","reason":"customer withdrew","dryRun":true}`)
	if code != http.StatusOK || !d.Done || d.Record.State != providers.StateNeedsReview {
		t.Fatalf("dry run: %d %+v", code, d)
	}
	code, d = post(token, `{"action":"close","by":"ana","reason":"customer withdrew"}`)
	if code != http.StatusOK || d.Record.State != providers.StateFailed || !strings.Contains(d.Message, "MANUAL") {
		t.Fatalf("close: %d %+v", code, d)
	}
	if code, d = post(token, `{"action":"recheck","by":"ana"}`); code != http.StatusConflict || d.Done {
		t.Fatalf("a decision on an ended order: %d %+v", code, d)
	}
	if code, _ := do(t, "POST", ts.URL+"/v1/orders/depal/NOPE/review", token, []byte(`{"action":"close","by":"a","reason":"x"}`)); code != http.StatusNotFound {
		t.Fatalf("unknown order: %d", code)
	}
}
