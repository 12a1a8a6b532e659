package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

type listBody struct {
	Orders []orders.Record `json:"orders"`
	Next   string          `json:"next"`
	Error  string          `json:"error"`
}

func getList(t *testing.T, url, token string) (int, listBody) {
	t.Helper()
	code, body := do(t, "GET", url, token, nil)
	var lb listBody
	if err := json.Unmarshal(body, &lb); err != nil {
		t.Fatalf("GET %s: %d %q: %v", url, code, body, err)
	}
	return code, lb
}

func TestListAndFindOverHTTP(t *testing.T) {
	const token = "tok"
	ts, b := adminServer(t, token)
	ctx := context.Background()
	st := b.w.Store()
	for i := 0; i < 7; i++ {
		if _, _, err := st.Create(ctx, order(providers.Names[i%2], fmt.Sprintf("H-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	url := ts.URL + "/v1/orders?state=received&limit=3"
	for pages := 0; ; pages++ {
		code, lb := getList(t, url, token)
		if code != http.StatusOK || len(lb.Orders) > 3 {
			t.Fatalf("page %d: %d %+v", pages, code, lb)
		}
		for _, r := range lb.Orders {
			seen[r.Key().String()] = true
		}
		if lb.Next == "" {
			break
		}
		url = ts.URL + "/v1/orders?state=received&limit=3&cursor=" + lb.Next
	}
	if len(seen) != 7 {
		t.Fatalf("pages held %d distinct orders, want 7: %v", len(seen), seen)
	}
	code, lb := getList(t, ts.URL+"/v1/orders?state=received&provider=depal", token)
	if code != http.StatusOK || len(lb.Orders) != 3 {
		t.Fatalf("provider=depal: %d, %d orders", code, len(lb.Orders))
	}
	if code, lb := getList(t, ts.URL+"/v1/orders?state=shipped", token); code != http.StatusOK || lb.Orders == nil || len(lb.Orders) != 0 {
		t.Fatalf("state=shipped: %d %+v", code, lb)
	}
	for _, q := range []string{"state=sleeping", "provider=amazon", "limit=0", "limit=5000", "cursor=@@", "since=x"} {
		if code, lb := getList(t, ts.URL+"/v1/orders?"+q, token); code != http.StatusBadRequest || lb.Error == "" {
			t.Errorf("%s: %d %+v, want 400", q, code, lb)
		}
	}

	k := orders.Key{Provider: providers.Xportcn, OutOrderID: "H-0"}
	if err := st.Link(ctx, k, []string{"9001"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, k, func(r *orders.Record) error {
		r.Parcel = &providers.ParcelRef{Carrier: "SF", BillNo: "SF1"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"9001", "SF1"} {
		code, lb := getList(t, ts.URL+"/v1/orders/find/"+id, token)
		if code != http.StatusOK || len(lb.Orders) != 1 || lb.Orders[0].Key() != k {
			t.Errorf("find %s: %d %+v", id, code, lb)
		}
	}
	if code, lb := getList(t, ts.URL+"/v1/orders/find/nope", token); code != http.StatusNotFound || lb.Error == "" {
		t.Errorf("find nope: %d %+v", code, lb)
	}
	// The record route still answers.
	if code, _ := do(t, "GET", ts.URL+"/v1/orders/xportcn/H-0", token, nil); code != http.StatusOK {
		t.Errorf("GET the record: %d", code)
	}
}
