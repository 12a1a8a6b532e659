package depal

import (
	"encoding/json"
	"testing"
)

// FuzzQuote feeds arbitrary preview data to the decoder and the amount
// mapping: it must never panic, and a quote it accepts adds up.
func FuzzQuote(f *testing.F) {
	f.Add([]byte(previewAnswer))
	f.Add([]byte(`{"previewId":"p","productTotalAmount":2.485}`))
	f.Add([]byte(`{"previewId":"p","productTotalAmount":"-0.01","cargoList":[{"productId":"x"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d previewData
		if json.Unmarshal(data, &d) != nil {
			return
		}
		q, err := quoteOf(&d)
		if err != nil {
			return
		}
		if q.Goods < 0 || q.Freight < 0 || q.Service < 0 || q.Total != q.Goods+q.Freight+q.Service || q.PreviewID == "" {
			t.Fatalf("inconsistent quote %+v from %s", q, data)
		}
	})
}

func TestFlexString(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"200"`, "200"}, {`200`, "200"}, {`null`, ""}, {`3456789012345678901`, "3456789012345678901"}, {`2.48`, "2.48"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var f flexString
			if err := json.Unmarshal([]byte(tt.in), &f); err != nil || string(f) != tt.want {
				t.Errorf("got %q, %v; want %q", f, err, tt.want)
			}
		})
	}
	var f flexString
	if err := json.Unmarshal([]byte(`{}`), &f); err == nil {
		t.Errorf("an object decoded as %q", f)
	}
}
