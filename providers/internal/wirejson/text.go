// Package wirejson holds the lenient JSON types both provider clients
// decode answers with.
package wirejson

import (
	"bytes"
	"encoding/json"
	"fmt"
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
