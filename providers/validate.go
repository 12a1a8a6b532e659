package providers

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxItems is the most cart lines one order may have.
const MaxItems = 50

// FieldError is an invalid order request: Field is the JSON path of the
// offending field ("items[2].quantity").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidOutOrderID reports whether id is 1..64 of [A-Za-z0-9_.:-].
func ValidOutOrderID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidProviderOrderID reports whether id, a provider's order id, is 1..64
// of [A-Za-z0-9_-]. Provider answers are checked with it before an id is
// stored, used in a Redis key or printed: an answer naming another id is
// malformed.
func ValidProviderOrderID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckProviderOrderIDs returns an error naming the first of ids that is
// not ValidProviderOrderID (quoted and cut), nil when all are. Clients
// wrap it in the class their answer calls for (a malformed answer).
func CheckProviderOrderIDs(ids ...string) error {
	for _, id := range ids {
		if !ValidProviderOrderID(id) {
			return fmt.Errorf("malformed provider order id %s (want 1..64 characters of [A-Za-z0-9_-])", quoteShort(id))
		}
	}
	return nil
}

// quoteShort quotes s for an error message, cut to 32 bytes.
func quoteShort(s string) string {
	if len(s) > 32 {
		return strconv.Quote(s[:32]) + "…"
	}
	return strconv.Quote(s)
}

// Validate checks r against docs/interface.md ("An order (JSON)") and
// returns a *FieldError naming the first field that is wrong.
func (r *OrderRequest) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	if r.Provider == "" {
		return bad("provider", "is required (one of %s)", strings.Join(Names, ", "))
	}
	if !Known(r.Provider) {
		return bad("provider", "unknown provider %s (one of %s)", quoteShort(r.Provider), strings.Join(Names, ", "))
	}
	if !ValidOutOrderID(r.OutOrderID) {
		return bad("outOrderId", "must be 1..64 characters of [A-Za-z0-9_.:-], got %s", quoteShort(r.OutOrderID))
	}
	a := r.Address
	if Blank(a.FullName) {
		return bad("address.fullName", "is required")
	}
	if Blank(a.Phone) && Blank(a.Mobile) {
		return bad("address.mobile", "a phone or mobile number is required")
	}
	if Blank(a.Address) {
		return bad("address.address", "is required")
	}
	for _, f := range []struct {
		name  string
		value string
		limit int
	}{
		{"fullName", a.FullName, MaxNameLen}, {"phone", a.Phone, MaxCodeLen}, {"mobile", a.Mobile, MaxCodeLen},
		{"country", a.Country, MaxNameLen}, {"province", a.Province, MaxNameLen}, {"city", a.City, MaxNameLen},
		{"district", a.District, MaxNameLen}, {"town", a.Town, MaxNameLen}, {"address", a.Address, MaxAddressLen},
		{"postCode", a.PostCode, MaxCodeLen}, {"districtCode", a.DistrictCode, MaxCodeLen},
	} {
		if why := textField(f.value, f.limit); why != "" {
			return bad("address."+f.name, "%s", why)
		}
	}
	if len(r.Items) == 0 {
		return bad("items", "at least one item is required")
	}
	if len(r.Items) > MaxItems {
		return bad("items", "at most %d items, got %d", MaxItems, len(r.Items))
	}
	for i, it := range r.Items {
		if it.ProductID <= 0 {
			return bad(fmt.Sprintf("items[%d].productId", i), "must be a positive integer")
		}
		if it.Quantity < 1 {
			return bad(fmt.Sprintf("items[%d].quantity", i), "must be at least 1, got %d", it.Quantity)
		}
		if why := textField(it.SkuID, MaxCodeLen); why != "" {
			return bad(fmt.Sprintf("items[%d].skuId", i), "%s", why)
		}
		if it.Quantity > 1_000_000 {
			return bad(fmt.Sprintf("items[%d].quantity", i), "must be at most 1000000, got %d", it.Quantity)
		}
	}
	if r.MaxTotal != "" {
		fen, err := ParseYuan(r.MaxTotal)
		if err != nil || fen < 0 {
			return bad("maxTotal", "must be a non-negative decimal string in yuan with at most 2 decimals, got %q", r.MaxTotal)
		}
	}
	if r.CallbackURL != "" {
		if why := checkCallbackURL(r.CallbackURL); why != "" {
			return bad("callbackUrl", "%s", why)
		}
	}
	for _, f := range []struct{ name, value string }{
		{"flow", r.Options.Flow}, {"aliId", r.Options.AliID}, {"sellerOpenId", r.Options.SellerOpenID},
	} {
		if why := textField(f.value, MaxCodeLen); why != "" {
			return bad("options."+f.name, "%s", why)
		}
	}
	return nil
}

// MaxTotalFen returns the price guard in fen, and false when there is none.
// Call it on a validated request.
func (r *OrderRequest) MaxTotalFen() (int64, bool) {
	if r.MaxTotal == "" {
		return 0, false
	}
	fen, err := ParseYuan(r.MaxTotal)
	return fen, err == nil
}
