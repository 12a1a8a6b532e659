package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// Provider text in a record (an id, an error message, a status word, a
// note) reaches the terminal without anything that could steer it.
func TestStatusStripsControlCharacters(t *testing.T) {
	const hostile = "\x1b]0;owned\x07\x1b[2J\u202e\r\nfake: line\x00"
	r := &orders.Record{
		Provider: providers.Xportcn, OutOrderID: "t-1", State: providers.StateFailed,
		ProviderOrderIDs: []string{"../" + hostile},
		Error:            &orders.ErrorInfo{Code: "R500" + hostile, Message: hostile},
		RawStatus:        hostile, CancelRefused: hostile,
		Parcel:  &providers.ParcelRef{Carrier: hostile, BillNo: hostile},
		History: []orders.Transition{{State: providers.StateFailed, At: time.Now(), Note: hostile}},
	}
	var b bytes.Buffer
	writeRecord(&b, r)
	if out := b.String(); strings.ContainsAny(out, "\x1b\x07\x00\r\u202e") || strings.Contains(out, "\nfake: line") {
		t.Fatalf("status printed control characters:\n%q", out)
	}
	if le := (&LookupError{Arg: "x\x1b[31m", Reason: "not found"}).Error(); strings.ContainsRune(le, 0x1b) {
		t.Fatalf("lookup error %q", le)
	}
}
