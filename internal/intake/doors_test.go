package intake

import (
	"context"
	"errors"
	"strings"
	"testing"

	"orderflow/internal/pipeline"
	"orderflow/providers"
)

// A key given twice, at any depth, is refused naming the field, instead
// of silently taking the last value.
func TestDecodeRefusesDuplicateKeys(t *testing.T) {
	for in, field := range map[string]string{
		`{"provider":"depal","outOrderId":"d-1","provider":"xportcn","address":{"fullName":"Li Lei","mobile":"13800138000","address":"1 Example Road"},"items":[{"productId":1,"quantity":1}]}`:                   "provider",
		`{"provider":"depal","outOrderId":"d-1","address":{"fullName":"Li Lei","mobile":"13800138000","address":"1 Example Road"},"items":[{"productId":1,"quantity":1,"quantity":100000}]}`:                      "items[0].quantity",
		`{"provider":"depal","outOrderId":"d-1","address":{"fullName":"Li Lei","fullName":"Han Meimei","mobile":"13800138000","address":"1 Example Road"},"items":[{"productId":1,"quantity":1}]}`:                "address.fullName",
		`{"provider":"depal","outOrderId":"d-1","address":{"fullName":"Li Lei","mobile":"13800138000","address":"1 Example Road"},"items":[{"productId":1,"quantity":1}],"options":{"flow":"a","fl\u006fw":"b"}}`: "options.flow",
	} {
		entries, err := Decode(strings.NewReader(in), 0)
		if err != nil || len(entries) != 1 {
			t.Fatalf("Decode = %v, %v", entries, err)
		}
		var fe *providers.FieldError
		if !errors.As(entries[0].Err, &fe) || fe.Field != field || entries[0].Err.Error() != field+": duplicate key" {
			t.Errorf("%s: err %v, want %q", field, entries[0].Err, field+": duplicate key")
		}
	}
}

// Submit refuses a callbackUrl at a literal loopback or private address
// unless the policy allows it, before Redis is touched, and echoes no
// malformed outOrderId.
func TestSubmitRefusesPrivateCallbackTargets(t *testing.T) {
	in := order("cb-1", map[string]string{"callbackUrl": `"http://169.254.169.254/latest/meta-data/"`}) + "\n" +
		order("cb-2", map[string]string{"callbackUrl": `"http://127.0.0.1:6379/"`}) + "\n" +
		order("x", map[string]string{"outOrderId": `"\u001b[31mred"`}) + "\n"
	entries, err := Decode(strings.NewReader(in), 0)
	if err != nil || len(entries) != 3 {
		t.Fatalf("Decode = %v, %v", entries, err)
	}
	for i, e := range entries {
		res, err := Submit(context.Background(), nil, nil, nil, e, Policy{})
		if err != nil || res.Outcome != pipeline.Invalid {
			t.Fatalf("entry %d: %+v, %v", i, res, err)
		}
		if i < 2 && (res.Field != "callbackUrl" || !strings.Contains(res.Error, "callbackUrl: must not point at")) {
			t.Errorf("entry %d: %+v, want invalid: callbackUrl: …", i, res)
		}
		if i == 2 && (res.OutOrderID != "" || res.Field != "outOrderId") {
			t.Errorf("malformed id echoed: %+v", res)
		}
	}
	if err := providers.CheckCallbackTarget("http://127.0.0.1:6379/", true); err != nil {
		t.Errorf("allowed loopback refused: %v", err)
	}
}
