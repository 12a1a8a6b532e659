package orders

import (
	"testing"
)

// Two records as the pipeline wrote them in `go run ./cmd/bench -only
// memory`: one in flight (awaiting payment) and one ended (completed,
// its parcel signed for).
const (
	benchInFlight = `{"version":5,"provider":"xportcn","outOrderId":"mi64-0586","request":{"provider":"xportcn","outOrderId":"mi64-0586","address":{"fullName":"Li Lei","phone":"+86 138 0013 8000","mobile":"13800138000","country":"CN","province":"Zhejiang","city":"Hangzhou","district":"Xihu","town":"","address":"1 Example Road","postCode":"310000","districtCode":"330106"},"items":[{"productId":623456780586,"skuId":"sku5","quantity":2}],"options":{"flow":"general"}},"state":"awaiting_payment","providerOrderIds":["3100000000000001358"],"quote":{"goods":1372,"freight":1000,"service":0,"total":2372,"lines":[{"productId":623456780586,"skuId":"sku5","quantity":2,"unitPrice":686,"amount":1372}],"tradeType":"fxassure"},"rawStatus":"waitbuyerpay","providerState":"awaiting_payment","createAttempts":1,"createSentAt":"2026-12-01T14:55:15.535487359Z","pollSeq":1,"quotedAt":"2026-12-01T14:55:15.519418369Z","receivedAt":"2026-12-01T14:55:13.641828053Z","updatedAt":"2026-12-01T14:55:16.362453686Z","deadline":"2026-12-31T14:55:13.641828053Z","history":[{"state":"received","at":"2026-12-01T14:55:13.641828053Z"},{"state":"previewed","at":"2026-12-01T14:55:15.519418369Z"},{"state":"created","at":"2026-12-01T14:55:15.536792164Z"},{"state":"awaiting_payment","at":"2026-12-01T14:55:16.362450474Z","note":"waitbuyerpay"}]}`
	benchEnded    = `{"version":7,"provider":"xportcn","outOrderId":"me64-0338","request":{"provider":"xportcn","outOrderId":"me64-0338","address":{"fullName":"Li Lei","phone":"+86 138 0013 8000","mobile":"13800138000","country":"CN","province":"Zhejiang","city":"Hangzhou","district":"Xihu","town":"","address":"1 Example Road","postCode":"310000","districtCode":"330106"},"items":[{"productId":910000000004,"skuId":"sku2","quantity":3}],"options":{"flow":"general"}},"state":"completed","providerOrderIds":["3100000000000000824"],"quote":{"goods":312,"freight":1000,"service":0,"total":1312,"lines":[{"productId":910000000004,"skuId":"sku2","quantity":3,"unitPrice":104,"amount":312}],"tradeType":"fxassure"},"rawStatus":"success","providerState":"completed","parcels":[{"orderId":"3100000000000000824","carrier":"YTO","billNo":"YT000000000824","status":"SIGN","done":true,"delivered":true}],"delivered":true,"createAttempts":1,"createSentAt":"2026-12-01T14:55:18.960792353Z","trackDone":true,"pollSeq":2,"trackSeq":1,"quotedAt":"2026-12-01T14:55:18.93953491Z","receivedAt":"2026-12-01T14:55:17.737075908Z","updatedAt":"2026-12-01T14:55:22.809324546Z","deadline":"2026-12-31T14:55:17.737075908Z","history":[{"state":"received","at":"2026-12-01T14:55:17.737075908Z"},{"state":"previewed","at":"2026-12-01T14:55:18.93953491Z"},{"state":"created","at":"2026-12-01T14:55:18.963202786Z"},{"state":"shipped","at":"2026-12-01T14:55:20.557291675Z","note":"waitbuyerreceive"},{"state":"delivered","at":"2026-12-01T14:55:22.7290867Z","note":"SIGN"},{"state":"completed","at":"2026-12-01T14:55:22.80932199Z","note":"success"}]}`
)

func benchRecords(b testing.TB) map[string]*Record {
	b.Helper()
	out := map[string]*Record{}
	for name, doc := range map[string]string{"inflight": benchInFlight, "ended": benchEnded} {
		r, err := decodeRecord(Key{}, doc)
		if err != nil {
			b.Fatal(err)
		}
		out[name] = r
	}
	return out
}

func BenchmarkEncodeRecord(b *testing.B) {
	for _, name := range []string{"inflight", "ended"} {
		r := benchRecords(b)[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				doc, err := encodeRecord(r)
				if err != nil {
					b.Fatal(err)
				}
				n = len(doc)
			}
			b.ReportMetric(float64(n), "stored-B")
		})
	}
}

func BenchmarkDecodeRecord(b *testing.B) {
	for _, name := range []string{"inflight", "ended"} {
		r := benchRecords(b)[name]
		doc, err := encodeRecord(r)
		if err != nil {
			b.Fatal(err)
		}
		stored := string(doc)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeRecord(r.Key(), stored); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
