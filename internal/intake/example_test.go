package intake_test

import (
	"fmt"
	"strings"

	"orderflow/internal/intake"
)

func ExampleDecode() {
	in := `{"provider":"depal","outOrderId":"UP-1","address":{"fullName":"Li Lei","mobile":"13800138000","address":"1 Example Road"},"items":[{"productId":623456789012,"skuId":"b5f2","quantity":2}]}
{"provider":"depal","outOrderId":"UP-2","items":[{"productId":623456789012,"quantity":"2"}]}
{"provider":"depal",
`
	entries, err := intake.Decode(strings.NewReader(in), 100)
	if err != nil {
		fmt.Println("batch refused:", err)
		return
	}
	for _, e := range entries {
		if e.Err != nil {
			fmt.Printf("#%d %s: %v\n", e.N, e.Req.OutOrderID, e.Err)
			continue
		}
		fmt.Printf("#%d %s: ok, %d item(s)\n", e.N, e.Req.OutOrderID, len(e.Req.Items))
	}
	// Output:
	// #1 UP-1: ok, 1 item(s)
	// #2 UP-2: items[0].quantity: expected a number, got string
	// #3 : malformed JSON at byte 21: unexpected end of JSON input
}
