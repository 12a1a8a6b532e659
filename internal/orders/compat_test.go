package orders

import (
	"context"
	"strings"
	"testing"

	"orderflow/internal/redistest"
	"orderflow/providers"
)

// oldRecord is a record as the previous release wrote it (before parcels,
// totals, provider state and decisions): one parcel, its word apart.
const oldRecord = `{"version":7,"provider":"xportcn","outOrderId":"OLD-1","request":{"provider":"xportcn",` +
	`"outOrderId":"OLD-1","address":{"fullName":"Li Lei","mobile":"13800138000","address":"1 Example Road"},` +
	`"items":[{"productId":623456789012,"skuId":"b5f2","quantity":2}],"options":{}},"state":"shipped",` +
	`"providerOrderIds":["3100000000000000042"],"quote":{"goods":1224,"freight":1000,"service":0,"total":2224},` +
	`"rawStatus":"waitbuyerreceive","parcel":{"carrier":"YTO","billNo":"YT000000000042"},"parcelStatus":"TRANSPORT",` +
	`"createAttempts":1,"createSentAt":"2026-11-30T10:00:01Z","pollStep":2,"trackStep":1,"pollSeq":5,"trackSeq":2,` +
	`"receivedAt":"2026-11-30T10:00:00Z","updatedAt":"2026-11-30T12:00:00Z","deadline":"2026-12-30T10:00:00Z",` +
	`"history":[{"state":"received","at":"2026-11-30T10:00:00Z"},{"state":"previewed","at":"2026-11-30T10:00:01Z"},` +
	`{"state":"created","at":"2026-11-30T10:00:02Z"},{"state":"awaiting_payment","at":"2026-11-30T10:00:30Z","note":"waitbuyerpay"},` +
	`{"state":"paid","at":"2026-11-30T10:05:00Z","note":"waitsellersend"},{"state":"shipped","at":"2026-11-30T11:00:00Z","note":"waitbuyerreceive"}]}`

// A record written by the previous release is read as it is, its single
// parcel moved into parcels, and written back in today's form with its
// parcel and provider order indexed.
func TestRecordOfThePreviousReleaseIsRead(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, srv *redistest.Server) {
		rdb := srv.Client(t)
		ctx := context.Background()
		st := NewStore(rdb, Config{})
		k := Key{Provider: providers.Xportcn, OutOrderID: "OLD-1"}
		if err := rdb.HSet(ctx, RecordKey(k), "v", "7", "doc", oldRecord).Err(); err != nil {
			t.Fatal(err)
		}
		r, err := st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != providers.StateShipped || r.Version != 7 || r.PollSeq != 5 || len(r.History) != 6 ||
			r.Quote == nil || r.Quote.Total != 2224 {
			t.Fatalf("read %+v", r)
		}
		if len(r.Parcels) != 1 || r.Parcels[0].BillNo != "YT000000000042" || r.Parcels[0].Status != "TRANSPORT" ||
			r.Parcels[0].OrderID != "3100000000000000042" || r.Parcel != nil {
			t.Fatalf("parcels %+v (old parcel %+v)", r.Parcels, r.Parcel)
		}
		w, err := st.Update(ctx, k, func(r *Record) error { r.PollSeq++; return nil })
		if err != nil || w.Version != 8 {
			t.Fatalf("update: %v version %d", err, w.Version)
		}
		if got, err := st.FindByParcel(ctx, k.Provider, "YT000000000042"); err != nil || got != k {
			t.Fatalf("find by parcel: %v %v", got, err)
		}
		if got, err := st.FindByProviderOrder(ctx, k.Provider, "3100000000000000042"); err != nil || got != k {
			t.Fatalf("find by provider order: %v %v", got, err)
		}
		doc := readStoredJSON(t, rdb, k, 8)
		if len(doc) == 0 || strings.Contains(doc, `"parcelStatus"`) {
			t.Fatalf("written back in the old form: %s", doc)
		}
	})
}
