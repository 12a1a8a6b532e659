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

// Hostile text is refused with the field named: control characters, line
// breaks, bidirectional overrides, invisible-only names, huge strings.
func TestValidateRefusesHostileText(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(*OrderRequest)
		field string
	}{
		{"NUL in name", func(r *OrderRequest) { r.Address.FullName = "Li\x00Lei" }, "address.fullName"},
		{"ESC in address", func(r *OrderRequest) { r.Address.Address = "1 Road \x1b[2J" }, "address.address"},
		{"CR LF in city", func(r *OrderRequest) { r.Address.City = "Hangzhou\r\nX-Injected: 1" }, "address.city"},
		{"bidi override in name", func(r *OrderRequest) { r.Address.FullName = "Li \u202egnaW" }, "address.fullName"},
		{"bidi isolate in province", func(r *OrderRequest) { r.Address.Province = "Zhe\u2066jiang" }, "address.province"},
		{"C1 in town", func(r *OrderRequest) { r.Address.Town = "a\u009bb" }, "address.town"},
		{"invalid UTF-8", func(r *OrderRequest) { r.Address.District = "\xff\xfe" }, "address.district"},
		{"zero-width-only name", func(r *OrderRequest) { r.Address.FullName = "\u200b\u200d\ufeff" }, "address.fullName"},
		{"zero-width-only country", func(r *OrderRequest) { r.Address.Country = "\u200b" }, "address.country"},
		{"900 KB address", func(r *OrderRequest) { r.Address.Address = strings.Repeat("路", 300_000) }, "address.address"},
		{"long name", func(r *OrderRequest) { r.Address.FullName = strings.Repeat("a", MaxNameLen+1) }, "address.fullName"},
		{"long mobile", func(r *OrderRequest) { r.Address.Mobile = strings.Repeat("1", MaxCodeLen+1) }, "address.mobile"},
		{"ESC in sku", func(r *OrderRequest) { r.Items[0].SkuID = "\x1b]0;pwned\x07" }, "items[0].skuId"},
		{"tab in option", func(r *OrderRequest) { r.Options.Flow = "a\tb" }, "options.flow"},
		{"callback with userinfo", func(r *OrderRequest) { r.CallbackURL = "https://u:p@up.example/x" }, "callbackUrl"},
		{"callback not http", func(r *OrderRequest) { r.CallbackURL = "gopher://up.example/x" }, "callbackUrl"},
		{"callback huge", func(r *OrderRequest) { r.CallbackURL = "https://up.example/" + strings.Repeat("a", MaxCallbackURL) }, "callbackUrl"},
		{"huge outOrderId", func(r *OrderRequest) { r.OutOrderID = strings.Repeat("\x1b", 900_000) }, "outOrderId"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := valid()
			c.edit(&r)
			err := r.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Validate = %v, want a FieldError on %s", err, c.field)
			}
			if len(err.Error()) > 300 || strings.ContainsAny(err.Error(), "\x00\x1b\r\n") {
				t.Fatalf("the error echoes the input: %.100q", err.Error())
			}
		})
	}
	r := valid()
	r.Address.FullName, r.Address.Address = "李雷 (Li Lei)", "浙江省杭州市 1 Example Road, Flat 3"
	if err := r.Validate(); err != nil {
		t.Fatalf("ordinary text refused: %v", err)
	}
}

func TestValidProviderOrderID(t *testing.T) {
	for id, want := range map[string]bool{
		"3391234567890123456": true, "xportcn-12": true, "A_b-9": true,
		"": false, "../x": false, "a\x00b": false, "\x1b[31m": false, "a.b": false, "a b": false,
		strings.Repeat("9", 64): true, strings.Repeat("9", 65): false, strings.Repeat("x", 5000): false,
	} {
		if got := ValidProviderOrderID(id); got != want {
			t.Errorf("ValidProviderOrderID(%.20q) = %v, want %v", id, got, want)
		}
	}
}

// A literal callback address of a refused range is refused at submit,
// loopback and private ones only without the allowance.
func TestCheckCallbackTarget(t *testing.T) {
	for _, c := range []struct {
		url          string
		allowPrivate bool
		refused      bool
	}{
		{"https://up.example/hook", false, false},
		{"https://203.0.113.7/hook", false, false},
		{"http://127.0.0.1:6379/", false, true},
		{"http://127.0.0.1:6379/", true, false},
		{"http://localhost:8080/", false, true},
		{"http://localhost:8080/", true, false},
		{"http://10.0.0.5/", false, true},
		{"http://192.168.1.1/", false, true},
		{"http://100.64.1.1/", false, true},
		{"http://[::1]/", false, true},
		{"http://[fd12::1]/", false, true},
		{"http://[::ffff:10.0.0.1]/", false, true},
		{"http://169.254.169.254/latest/meta-data/", false, true},
		{"http://169.254.169.254/latest/meta-data/", true, true},
		{"http://[fe80::1]/", true, true},
		{"http://0.0.0.0:6379/", true, true},
		{"http://224.0.0.1/", true, true},
	} {
		err := CheckCallbackTarget(c.url, c.allowPrivate)
		var fe *FieldError
		if c.refused != (err != nil) || (err != nil && (!errors.As(err, &fe) || fe.Field != "callbackUrl")) {
			t.Errorf("CheckCallbackTarget(%s, %v) = %v, want refused %v", c.url, c.allowPrivate, err, c.refused)
		}
	}
}
