package providers

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Bounds of an order request's text fields, in characters (MaxCallbackURL
// in bytes).
const (
	MaxNameLen     = 200  // fullName, country, province, city, district, town
	MaxAddressLen  = 500  // address
	MaxCodeLen     = 64   // phone, mobile, postCode, districtCode, skuId, options
	MaxCallbackURL = 2048 // callbackUrl
)

// Unsafe says why s may not be taken as text ("" when it may): invalid
// UTF-8, a control character (C0 including tab, CR and LF, DEL, C1), a
// line or paragraph separator, or a bidirectional override or isolate
// (U+202A–U+202E, U+2066–U+2069), which would let a name or an address
// reorder what a terminal or a page shows around it.
func Unsafe(s string) string {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return "is not valid UTF-8"
			}
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return fmt.Sprintf("must not hold control character %U", r)
		case r == 0x2028 || r == 0x2029:
			return fmt.Sprintf("must not hold line separator %U", r)
		case isBidiControl(r):
			return fmt.Sprintf("must not hold bidirectional control %U", r)
		}
	}
	return ""
}

func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// Blank reports whether s shows nothing: empty, or only white space and
// zero-width characters (U+200B–U+200D, U+2060, U+FEFF, U+180E, U+00AD).
func Blank(s string) bool {
	for _, r := range s {
		switch r {
		case 0x200b, 0x200c, 0x200d, 0x2060, 0xfeff, 0x180e, 0x00ad:
			continue
		}
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// textField checks one text field: its bound (in characters) and Unsafe;
// a field that is set must show something (not only zero-width
// characters). It returns the reason, "" when s is fine.
func textField(s string, limit int) string {
	if s == "" {
		return ""
	}
	if n := utf8.RuneCountInString(s); n > limit {
		return fmt.Sprintf("must be at most %d characters, got %d", limit, n)
	}
	if why := Unsafe(s); why != "" {
		return why
	}
	if Blank(s) {
		return "holds only white space or invisible characters"
	}
	return ""
}
