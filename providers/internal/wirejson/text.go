// Package wirejson holds the lenient JSON types both provider clients
// decode answers with, and the checks of the fields they share.
package wirejson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"orderflow/providers"
)

// Text is a string on the wire that some answers send as a JSON number (a
// code, an order id, an amount) or a boolean. A number keeps its exact
// text: no float conversion, so 19-digit 1688 order ids and decimal
// amounts survive. null is "".
type Text string

// UnmarshalJSON accepts a JSON string, a number or boolean (kept as its
// text) or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = Text(s)
	case bytes.Equal(b, []byte("true")), bytes.Equal(b, []byte("false")):
		*t = Text(b)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a string or a number, got %.40s", b)
		}
		*t = Text(n.String())
	}
	return nil
}

// maxQuantity bounds a line's quantity so that it fits an int everywhere.
const maxQuantity = math.MaxInt32

// OrderLine reads one product line of an order details answer, its fields
// as received: productID a positive integer, quantity an integer of at
// least 1 (both as a JSON number or a numeric string), skuID any text
// (empty allowed, as an Item's). Anything else is an error naming field
// (the line's JSON path, e.g. "productItems[1]"): a malformed answer.
func OrderLine(field string, productID, skuID, quantity Text) (providers.OrderLine, error) {
	pid, err := strconv.ParseInt(strings.TrimSpace(string(productID)), 10, 64)
	if err != nil || pid <= 0 {
		return providers.OrderLine{}, fmt.Errorf("%s: product id %.40q is not a positive integer", field, string(productID))
	}
	q, err := strconv.ParseInt(strings.TrimSpace(string(quantity)), 10, 64)
	if err != nil || q < 1 || q > maxQuantity {
		return providers.OrderLine{}, fmt.Errorf("%s: quantity %.40q is not an integer from 1 to %d", field, string(quantity), maxQuantity)
	}
	return providers.OrderLine{ProductID: pid, SkuID: string(skuID), Quantity: int(q)}, nil
}
