package sim

import (
	"strings"
	"testing"
	"time"

	"orderflow/providers"
)

func TestStatusIsAFunctionOfTime(t *testing.T) {
	tl := Timeline{}.withDefaults()
	c := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ship := tl.PayAfter + tl.ShipAfter
	sign := ship + 3*tl.ParcelStep
	type at struct {
		d      time.Duration
		status string
		parcel string
	}
	tests := []struct {
		name string
		fate Fate
		want []at
	}{
		{"normal", FateNormal, []at{
			{0, "waitbuyerpay", ""}, {tl.PayAfter - 1, "waitbuyerpay", ""},
			{tl.PayAfter, "waitsellersend", ""}, {ship, "waitbuyerreceive", "WAITACCEPT"},
			{ship + tl.ParcelStep, "waitbuyerreceive", "ACCEPT"}, {ship + 2*tl.ParcelStep, "waitbuyerreceive", "TRANSPORT"},
			{sign, "confirm_goods", "SIGN"}, {sign + tl.CompleteAfter, "success", "SIGN"},
			{sign + 100*time.Hour, "success", "SIGN"},
		}},
		{"cancelled", FateCancelled, []at{
			{0, "waitbuyerpay", ""}, {tl.PayAfter, "cancel", ""}, {100 * time.Hour, "cancel", ""},
		}},
		{"terminated", FateTerminated, []at{
			{0, "waitbuyerpay", ""}, {tl.PayAfter, "waitsellersend", ""}, {ship, "terminated", ""},
			{100 * time.Hour, "terminated", ""},
		}},
		{"unknown status", FateUnknownStatus, []at{
			{tl.PayAfter, UnknownStatusWord, ""}, {ship, "waitbuyerreceive", "WAITACCEPT"},
			{sign + tl.CompleteAfter, "success", "SIGN"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &order{created: c, fate: tt.fate}
			for _, w := range tt.want {
				now := c.Add(w.d)
				if got := o.statusAt(tl, now); got != w.status {
					t.Errorf("at +%s: status %q, want %q", w.d, got, w.status)
				}
				v := o.view(tl, now)
				if v.ParcelStatus != w.parcel {
					t.Errorf("at +%s: parcel %q, want %q", w.d, v.ParcelStatus, w.parcel)
				}
			}
		})
	}
}

func TestFateAndParts(t *testing.T) {
	it := func(id int64, q int) providers.Item { return providers.Item{ProductID: id, Quantity: q} }
	tests := []struct {
		name      string
		provider  string
		items     []providers.Item
		fate      Fate
		parts     int
		totalFen  int64
		partGoods []int64
	}{
		{"plain xportcn", providers.Xportcn, []providers.Item{it(5, 2)}, FateNormal, 1, 2*105 + Freight, []int64{210}},
		{"plain depal has a service fee", providers.Depal, []providers.Item{it(5000, 10)}, FateNormal, 1, 51000 + Freight + 1020, []int64{51000}},
		{"cancel wins", providers.Xportcn, []providers.Item{it(ProductTerminated, 1), it(ProductCancelled, 1)}, FateCancelled, 1, 0, nil},
		{"split by lines", providers.Xportcn, []providers.Item{it(1, 1), it(ProductSplit, 1), it(2, 1)}, FateNormal, 2, 0, []int64{101, UnitPrice(ProductSplit) + 102}},
		{"split one line by quantity", providers.Xportcn, []providers.Item{it(ProductSplit, 3)}, FateNormal, 2, 0, []int64{2 * UnitPrice(ProductSplit), UnitPrice(ProductSplit)}},
		{"quantity 1 does not split", providers.Xportcn, []providers.Item{it(ProductSplit, 1)}, FateNormal, 1, 0, nil},
		{"depal never splits", providers.Depal, []providers.Item{it(ProductSplit, 4)}, FateNormal, 1, 0, nil},
		{"unknown status", providers.Depal, []providers.Item{it(ProductUnknownStatus, 1)}, FateUnknownStatus, 1, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f := FateOf(tt.items); f != tt.fate {
				t.Errorf("fate %s, want %s", f, tt.fate)
			}
			parts := Parts(tt.provider, tt.items)
			if len(parts) != tt.parts {
				t.Fatalf("%d parts, want %d", len(parts), tt.parts)
			}
			for i, g := range tt.partGoods {
				if got := Goods(parts[i]); got != g {
					t.Errorf("part %d goods %d, want %d", i, got, g)
				}
			}
			q := PlannedQuote(tt.provider, tt.items)
			if q.Freight != Freight*int64(tt.parts) || q.Total != q.Goods+q.Freight+q.Service {
				t.Errorf("quote %+v inconsistent", q)
			}
			if tt.totalFen != 0 && q.Total != tt.totalFen {
				t.Errorf("total %d, want %d", q.Total, tt.totalFen)
			}
		})
	}
}

func TestPlannedError(t *testing.T) {
	for _, tt := range []struct {
		id   int64
		n    int
		ok   bool
		code string
	}{
		{PlannedErrorBase, 0, false, ""}, {PlannedErrorBase + 1, 1, true, "R500_001"},
		{PlannedErrorBase + 9, 9, true, "R500_009"}, {PlannedErrorBase + 10, 0, false, ""},
	} {
		n, ok := PlannedError(tt.id)
		if n != tt.n || ok != tt.ok {
			t.Errorf("PlannedError(%d) = %d, %v; want %d, %v", tt.id, n, ok, tt.n, tt.ok)
		}
		if ok && PlannedErrorCode(n) != tt.code {
			t.Errorf("PlannedErrorCode(%d) = %s, want %s", n, PlannedErrorCode(n), tt.code)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"negative latency", Config{Latency: -1}, "Latency"},
		{"negative timeline", Config{Timeline: Timeline{PayAfter: -1}}, "Timeline.PayAfter"},
		{"unknown quota provider", Config{Quota: map[string]Quota{"acme": {Rate: 1}}}, `Quota["acme"]`},
		{"negative burst", Config{Quota: map[string]Quota{"depal": {Rate: 1, Burst: -1}}}, "Burst"},
		{"bad probability", Config{Faults: Faults{HTTP5xx: 1.5}}, "Faults.HTTP5xx"},
		{"bad late commit", Config{Faults: Faults{LateCommit: -0.1}}, "Faults.LateCommit"},
		{"bad gateway", Config{Faults: Faults{GatewayAfterCommit: 2}}, "Faults.GatewayAfterCommit"},
		{"bad empty success", Config{Faults: Faults{EmptySuccess: 1.01}}, "Faults.EmptySuccess"},
		{"bad unfiltered", Config{Faults: Faults{UnfilteredList: -1}}, "Faults.UnfilteredList"},
		{"bad partial", Config{Faults: Faults{PartialCreate: 3}}, "Faults.PartialCreate"},
		{"negative late delay", Config{Faults: Faults{LateCommitDelay: -time.Second}}, "Faults.LateCommitDelay"},
		{"negative search lag", Config{Faults: Faults{SearchLag: -time.Second}}, "Faults.SearchLag"},
		{"bad push url", Config{PushURL: "not a url"}, "PushURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
		})
	}
	s, err := New(Config{})
	if err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	_ = s.Close()
}
