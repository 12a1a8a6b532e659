package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"orderflow/providers"
)

// decodeOrder decodes one order strictly: exact field names, no unknown
// fields, no numbers as strings or strings as numbers. Errors name the
// field by its JSON path ("items[0].quantity"). The whole order is decoded
// even after an error, so the result holds what could be read (the
// outOrderId, for the report); the error is the first problem met.
func decodeOrder(raw []byte) (providers.OrderRequest, error) {
	var req providers.OrderRequest
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return req, &DecodeError{Reason: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se), Err: err}
		}
		return req, &DecodeError{Reason: fmt.Sprintf("malformed JSON: %v", err), Err: err}
	}
	if kind(raw) != "object" {
		return req, &DecodeError{Reason: "expected an order (a JSON object), got " + kind(raw)}
	}
	d := &decoder{}
	d.object(raw, "", func(key string, val []byte, path string) bool {
		switch key {
		case "provider":
			d.str(path, val, &req.Provider)
		case "outOrderId":
			d.str(path, val, &req.OutOrderID)
		case "address":
			d.address(path, val, &req.Address)
		case "items":
			d.items(path, val, &req.Items)
		case "maxTotal":
			d.strHint(path, val, &req.MaxTotal, ` (a decimal yuan amount such as "250.00")`)
		case "callbackUrl":
			d.str(path, val, &req.CallbackURL)
		case "options":
			d.options(path, val, &req.Options)
		default:
			return false
		}
		return true
	})
	return req, d.err
}

// decoder keeps the first error of a decode.
type decoder struct {
	err error
}

func (d *decoder) fail(field, format string, a ...any) {
	if d.err == nil {
		d.err = &providers.FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
}

// kind names the JSON type of a valid value by its first byte.
func kind(val []byte) string {
	val = bytes.TrimLeft(val, " \t\r\n")
	if len(val) == 0 {
		return "nothing"
	}
	switch val[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// object calls member for every member of the object val (at path), in
// input order; member reports whether it knows the key. null is an empty
// object. val is valid JSON.
func (d *decoder) object(val []byte, path string, member func(key string, val []byte, path string) bool) {
	switch k := kind(val); k {
	case "null":
		return
	case "object":
	default:
		d.fail(path, "expected an object, got %s", k)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(val))
	_, _ = dec.Token() // '{'
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			d.fail(path, "malformed object: %v", err) // not reached: val is valid
			return
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			d.fail(path, "malformed object: %v", err)
			return
		}
		if seen[key] {
			d.fail(join(path, key), "duplicate key")
			continue
		}
		seen[key] = true
		if !member(key, v, join(path, key)) {
			d.fail(join(path, key), "unknown field")
		}
	}
}

func (d *decoder) str(path string, val []byte, dst *string) { d.strHint(path, val, dst, "") }

func (d *decoder) strHint(path string, val []byte, dst *string, hint string) {
	switch k := kind(val); k {
	case "null":
	case "string":
		_ = json.Unmarshal(val, dst) // a valid JSON string
	default:
		d.fail(path, "expected a string%s, got %s", hint, k)
	}
}

// integer decodes a JSON integer of bits bits.
func (d *decoder) integer(path string, val []byte, bits int) int64 {
	switch k := kind(val); k {
	case "null":
		return 0
	case "number":
	default:
		d.fail(path, "expected a number, got %s", k)
		return 0
	}
	lit := string(bytes.TrimSpace(val))
	n, err := strconv.ParseInt(lit, 10, bits)
	if err != nil {
		if len(lit) > 32 {
			lit = lit[:32] + "…"
		}
		d.fail(path, "expected an integer, got %s", lit)
		return 0
	}
	return n
}

func (d *decoder) address(path string, val []byte, a *providers.Address) {
	fields := map[string]*string{
		"fullName": &a.FullName, "phone": &a.Phone, "mobile": &a.Mobile,
		"country": &a.Country, "province": &a.Province, "city": &a.City,
		"district": &a.District, "town": &a.Town, "address": &a.Address,
		"postCode": &a.PostCode, "districtCode": &a.DistrictCode,
	}
	d.object(val, path, func(key string, v []byte, p string) bool {
		dst, ok := fields[key]
		if ok {
			d.str(p, v, dst)
		}
		return ok
	})
}

func (d *decoder) options(path string, val []byte, o *providers.Options) {
	fields := map[string]*string{"flow": &o.Flow, "aliId": &o.AliID, "sellerOpenId": &o.SellerOpenID}
	d.object(val, path, func(key string, v []byte, p string) bool {
		dst, ok := fields[key]
		if ok {
			d.str(p, v, dst)
		}
		return ok
	})
}

func (d *decoder) items(path string, val []byte, items *[]providers.Item) {
	switch k := kind(val); k {
	case "null":
		return
	case "array":
	default:
		d.fail(path, "expected an array, got %s", k)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(val))
	_, _ = dec.Token() // '['
	for i := 0; dec.More(); i++ {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil && err != io.EOF {
			d.fail(path, "malformed array: %v", err) // not reached: val is valid
			return
		}
		var it providers.Item
		p := fmt.Sprintf("%s[%d]", path, i)
		d.object(v, p, func(key string, v []byte, p string) bool {
			switch key {
			case "productId":
				it.ProductID = d.integer(p, v, 64)
			case "skuId":
				d.str(p, v, &it.SkuID)
			case "quantity":
				it.Quantity = int(d.integer(p, v, strconv.IntSize))
			default:
				return false
			}
			return true
		})
		*items = append(*items, it)
	}
}
