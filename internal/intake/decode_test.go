package intake

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"orderflow/providers"
)

// order returns a valid order as compact JSON, with extra members spliced in
// (replacing none: callers use fields not already present, or override
// through the replace map).
func order(id string, replace map[string]string) string {
	fields := []struct{ k, v string }{
		{"provider", `"depal"`},
		{"outOrderId", fmt.Sprintf("%q", id)},
		{"address", `{"fullName":"Li Lei","mobile":"13800138000","address":"1 Example Road"}`},
		{"items", `[{"productId":623456789012,"skuId":"b5f2","quantity":2}]`},
	}
	var parts []string
	seen := map[string]bool{}
	for _, f := range fields {
		v := f.v
		if r, ok := replace[f.k]; ok {
			v = r
		}
		seen[f.k] = true
		if v != "-" {
			parts = append(parts, fmt.Sprintf("%q:%s", f.k, v))
		}
	}
	for k, v := range replace {
		if !seen[k] {
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// summary renders entries as "N ok ID" or "N error MESSAGE".
func summary(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		if e.Err != nil {
			out = append(out, fmt.Sprintf("%d error %v", e.N, e.Err))
		} else {
			out = append(out, fmt.Sprintf("%d ok %s", e.N, e.Req.OutOrderID))
		}
	}
	return out
}

func TestDecode(t *testing.T) {
	big := `{"provider":"depal","outOrderId":"big","address":{"fullName":"` + strings.Repeat("x", MaxOrderBytes) + `"}}`
	for _, c := range []struct {
		name  string
		in    string
		limit int
		want  []string
	}{
		{"empty", "", 0, nil},
		{"blank", " \n\t\r\n ", 0, nil},
		{"empty array", " [ ] ", 0, nil},
		{"array", "[" + order("A-1", nil) + ",\n " + order("A-2", nil) + "]", 0,
			[]string{"1 ok A-1", "2 ok A-2"}},
		{"single object on one line", order("S-1", nil), 0, []string{"1 ok S-1"}},
		{"single pretty object", "{\n  \"provider\": \"xportcn\",\n  \"outOrderId\": \"P-1\",\n" +
			"  \"address\": {\"fullName\": \"Li\", \"phone\": \"1\", \"address\": \"x\"},\n" +
			"  \"items\": [\n    {\"productId\": 1, \"skuId\": \"s\", \"quantity\": 1}\n  ]\n}\n", 0,
			[]string{"1 ok P-1"}},
		{"stream of pretty objects", "{\n\"provider\":\"depal\",\"outOrderId\":\"Q-1\",\"address\":{\"fullName\":\"a\",\"mobile\":\"1\",\"address\":\"b\"},\"items\":[{\"productId\":1,\"quantity\":1}]}\n" +
			"{\n\"provider\":\"depal\",\"outOrderId\":\"Q-2\",\"address\":{\"fullName\":\"a\",\"mobile\":\"1\",\"address\":\"b\"},\"items\":[{\"productId\":1,\"quantity\":0}]}", 0,
			[]string{"1 ok Q-1", "2 error items[0].quantity: must be at least 1, got 0"}},
		{"ndjson with bom, crlf and blank lines", "\xef\xbb\xbf" + order("N-1", nil) + "\r\n\r\n" + order("N-2", nil) + "\r\n", 0,
			[]string{"1 ok N-1", "2 ok N-2"}},
		{"ndjson lines are independent", strings.Join([]string{
			order("L-1", nil),
			`{"provider":"depal","outOrderId":"L-2",}`,
			order("L-3", map[string]string{"items": `[{"productId":1,"quantity":"2"}]`}),
			order("L-4", map[string]string{"colour": `"red"`}),
			`[1,2]`,
			`"just a string"`,
			order("L-7", nil),
		}, "\n"), 0, []string{
			"1 ok L-1",
			"2 error malformed JSON at byte 40: invalid character '}' looking for beginning of object key string",
			"3 error items[0].quantity: expected a number, got string",
			"4 error colour: unknown field",
			"5 error expected an order (a JSON object), got array",
			"6 error expected an order (a JSON object), got string",
			"7 ok L-7",
		}},
		{"field errors", strings.Join([]string{
			order("F-1", map[string]string{"items": `[{"productId":1.5,"quantity":1}]`}),
			order("F-2", map[string]string{"items": `[{"productId":1,"quantity":1},{"productId":"623","quantity":1}]`}),
			order("F-3", map[string]string{"maxTotal": `250.00`}),
			order("F-4", map[string]string{"address": `"Hangzhou"`}),
			order("F-5", map[string]string{"items": `{"productId":1}`}),
			order("F-6", map[string]string{"address": `{"fullName":"a","mobile":"1","address":"b","street":"c"}`}),
			order("F-7", map[string]string{"options": `{"flow":7}`}),
			order("F-8", map[string]string{"items": `[{"productId":1,"quantity":99999999999999999999}]`}),
			order("F-9", map[string]string{"items": `[{"productId":1,"quantity":1,"price":3}]`}),
			order("F-10", map[string]string{"provider": `["depal"]`}),
			`{"Provider":"depal"}`,
			`null`,
		}, "\n"), 0, []string{
			"1 error items[0].productId: expected an integer, got 1.5",
			`2 error items[1].productId: expected a number, got string`,
			`3 error maxTotal: expected a string (a decimal yuan amount such as "250.00"), got number`,
			"4 error address: expected an object, got string",
			"5 error items: expected an array, got object",
			"6 error address.street: unknown field",
			"7 error options.flow: expected a string, got number",
			"8 error items[0].quantity: expected an integer, got 99999999999999999999",
			"9 error items[0].price: unknown field",
			"10 error provider: expected a string, got array",
			"11 error Provider: unknown field",
			"12 error expected an order (a JSON object), got null",
		}},
		{"validation errors", strings.Join([]string{
			order("V-1", map[string]string{"provider": `"amazon"`}),
			order("bad id!", nil),
			order("V-3", map[string]string{"address": `{"fullName":" ","mobile":"1","address":"b"}`}),
			order("V-4", map[string]string{"address": `{"fullName":"a","address":"b"}`}),
			order("V-5", map[string]string{"items": `[]`}),
			order("V-6", map[string]string{"items": `[{"productId":0,"quantity":1}]`}),
			order("V-7", map[string]string{"maxTotal": `"1.234"`}),
			order("V-8", map[string]string{"callbackUrl": `"ftp://x"`}),
			order("V-9", map[string]string{"provider": `null`}),
		}, "\n"), 0, []string{
			`1 error provider: unknown provider "amazon" (one of xportcn, depal)`,
			`2 error outOrderId: must be 1..64 characters of [A-Za-z0-9_.:-], got "bad id!"`,
			"3 error address.fullName: is required",
			"4 error address.mobile: a phone or mobile number is required",
			"5 error items: at least one item is required",
			"6 error items[0].productId: must be a positive integer",
			`7 error maxTotal: must be a non-negative decimal string in yuan with at most 2 decimals, got "1.234"`,
			"8 error callbackUrl: must be an absolute http(s) URL",
			"9 error provider: is required (one of xportcn, depal)",
		}},
		{"huge ndjson line is skipped", order("H-1", nil) + "\n" + big + "\n" + order("H-3", nil), 0, []string{
			"1 ok H-1",
			fmt.Sprintf("2 error order larger than %d bytes", MaxOrderBytes),
			"3 ok H-3",
		}},
		{"limit exactly", order("A", nil) + "\n" + order("B", nil), 2, []string{"1 ok A", "2 ok B"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			entries, err := Decode(strings.NewReader(c.in), c.limit)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := summary(entries)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			for _, e := range entries {
				if e.Err == nil {
					if err := e.Req.Validate(); err != nil {
						t.Errorf("entry %d has no error but is invalid: %v", e.N, err)
					}
				}
			}
		})
	}
}

func TestDecodeFieldErrorsAreFieldErrors(t *testing.T) {
	entries, err := Decode(strings.NewReader(order("X", map[string]string{"items": `[{"productId":1,"quantity":"2"}]`})), 0)
	if err != nil || len(entries) != 1 {
		t.Fatalf("Decode = %d entries, %v", len(entries), err)
	}
	var fe *providers.FieldError
	if !errors.As(entries[0].Err, &fe) || fe.Field != "items[0].quantity" {
		t.Fatalf("error %v is not a FieldError on items[0].quantity", entries[0].Err)
	}
	if entries[0].Req.OutOrderID != "X" {
		t.Errorf("Req.OutOrderID = %q: the rest of the order should still be decoded", entries[0].Req.OutOrderID)
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	hugeElem := "[" + order("A", nil) + `,{"provider":"` + strings.Repeat("y", 2*MaxOrderBytes) + `"}]`
	for _, c := range []struct {
		name   string
		in     string
		limit  int
		target error
		n      int
	}{
		{"not json", "hello", 0, ErrMalformed, 0},
		{"number", "42", 0, ErrMalformed, 0},
		{"array syntax error", "[" + order("A", nil) + ",{\"provider\" \"depal\"}]", 0, ErrMalformed, 2},
		{"array trailing comma", "[" + order("A", nil) + ",]", 0, ErrMalformed, 2},
		{"array truncated", "[" + order("A", nil), 0, ErrMalformed, 2},
		{"array trailing data", "[" + order("A", nil) + "] {}", 0, ErrMalformed, 0},
		{"array too many", "[" + order("A", nil) + "," + order("B", nil) + "," + order("C", nil) + "]", 2, ErrTooMany, 3},
		{"ndjson too many", order("A", nil) + "\n" + order("B", nil) + "\n\n" + order("C", nil), 2, ErrTooMany, 3},
		{"stream too many", "{\n}\n{\n}\n", 1, ErrTooMany, 2},
		{"stream syntax error", "{\n\"provider\": }", 0, ErrMalformed, 1},
		{"array element too large", hugeElem, 0, ErrTooLarge, 2},
		{"stream object too large", "{\n\"provider\":\"" + strings.Repeat("z", MaxOrderBytes+10) + "\"}", 0, ErrTooLarge, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			entries, err := Decode(strings.NewReader(c.in), c.limit)
			var be *BatchError
			if !errors.As(err, &be) || !errors.Is(err, c.target) {
				t.Fatalf("Decode error = %v, want a *BatchError wrapping %v", err, c.target)
			}
			if be.N != c.n {
				t.Errorf("BatchError.N = %d, want %d (%v)", be.N, c.n, err)
			}
			if entries != nil {
				t.Errorf("got %d entries with a batch error, want none", len(entries))
			}
		})
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestDecodeStopsReadingAHugeArrayElement(t *testing.T) {
	in := &countingReader{r: bytes.NewReader([]byte("[\"" + strings.Repeat("a", 50*MaxOrderBytes) + "\"]"))}
	if _, err := Decode(in, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode error = %v, want ErrTooLarge", err)
	}
	if in.n > 3*MaxOrderBytes {
		t.Errorf("read %d bytes of a huge element, want at most %d", in.n, 3*MaxOrderBytes)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"", "[]", "{}", "null", "[1]", "[{}]",
		order("A-1", nil),
		"[" + order("A-1", nil) + "," + order("A-2", nil) + "]",
		order("A-1", nil) + "\n" + order("A-2", map[string]string{"maxTotal": `"10.00"`}) + "\n",
		"{\n\"provider\":\"depal\"\n}\n{\"outOrderId\":\"x\"}",
		order("A-1", map[string]string{"items": `[{"productId":1,"quantity":"2"}]`}),
		`{"items":[null,{"productId":-1}],"address":null,"options":{"flow":"general"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, err := Decode(bytes.NewReader(in), 100)
		if err != nil {
			var be *BatchError
			if !errors.As(err, &be) {
				t.Fatalf("error %v is not a *BatchError", err)
			}
			if entries != nil {
				t.Fatalf("%d entries with a batch error", len(entries))
			}
			return
		}
		if len(entries) > 100 {
			t.Fatalf("%d entries over the limit of 100", len(entries))
		}
		for i, e := range entries {
			if e.N != i+1 {
				t.Fatalf("entry %d has N %d", i, e.N)
			}
			if e.Err == nil {
				if err := e.Req.Validate(); err != nil {
					t.Fatalf("entry %d has no error but is invalid: %v", e.N, err)
				}
			} else if e.Err.Error() == "" {
				t.Fatalf("entry %d has an empty error", e.N)
			}
		}
	})
}
