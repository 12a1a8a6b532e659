package providers

import (
	"errors"
	"strings"
	"testing"
)

func valid() OrderRequest {
	return OrderRequest{
		Provider: Xportcn, OutOrderID: "UP-2026-000123",
		Address: Address{FullName: "Li Lei", Mobile: "13800138000", Address: "1 Example Road"},
		Items:   []Item{{ProductID: 623456789012, SkuID: "b5f2", Quantity: 2}},
	}
}

func TestValidate(t *testing.T) {
	many := make([]Item, MaxItems+1)
	for i := range many {
		many[i] = Item{ProductID: 1, Quantity: 1}
	}
	for _, c := range []struct {
		name  string
		edit  func(*OrderRequest)
		field string
	}{
		{"ok", func(*OrderRequest) {}, ""},
		{"no provider", func(r *OrderRequest) { r.Provider = "" }, "provider"},
		{"unknown provider", func(r *OrderRequest) { r.Provider = "taobao" }, "provider"},
		{"empty id", func(r *OrderRequest) { r.OutOrderID = "" }, "outOrderId"},
		{"bad id char", func(r *OrderRequest) { r.OutOrderID = "a b" }, "outOrderId"},
		{"long id", func(r *OrderRequest) { r.OutOrderID = strings.Repeat("a", 65) }, "outOrderId"},
		{"no name", func(r *OrderRequest) { r.Address.FullName = " " }, "address.fullName"},
		{"no phone", func(r *OrderRequest) { r.Address.Mobile = "" }, "address.mobile"},
		{"no address", func(r *OrderRequest) { r.Address.Address = "" }, "address.address"},
		{"no items", func(r *OrderRequest) { r.Items = nil }, "items"},
		{"too many items", func(r *OrderRequest) { r.Items = many }, "items"},
		{"zero quantity", func(r *OrderRequest) { r.Items[0].Quantity = 0 }, "items[0].quantity"},
		{"bad product", func(r *OrderRequest) { r.Items[0].ProductID = 0 }, "items[0].productId"},
		{"bad maxTotal", func(r *OrderRequest) { r.MaxTotal = "12.345" }, "maxTotal"},
		{"negative maxTotal", func(r *OrderRequest) { r.MaxTotal = "-1" }, "maxTotal"},
		{"bad callback", func(r *OrderRequest) { r.CallbackURL = "ftp://x" }, "callbackUrl"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := valid()
			c.edit(&r)
			err := r.Validate()
			var fe *FieldError
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
				t.Fatalf("Validate = %v, want a FieldError on %s", err, c.field)
			}
		})
	}
}

func TestMapStatus(t *testing.T) {
	for word, want := range map[string]State{
		"waitbuyerpay": StateAwaitingPayment, "WAITING_FOR_PAYMENT": StateAwaitingPayment,
		"waitsellersend": StatePaid, "WAITING_FOR_SENT": StatePaid, "waitbuyerreceive": StateShipped,
		"confirm_goods": StateDelivered, "success": StateCompleted, "cancel": StateCancelled,
		"CANCEL": StateCancelled, "terminated": StateTerminated, "waitlogisticstakein": StateUnknown,
	} {
		got, ok := MapStatus(word)
		if got != want || ok != (want != StateUnknown) {
			t.Errorf("MapStatus(%q) = %q, %v; want %q", word, got, ok, want)
		}
	}
}
