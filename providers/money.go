package providers

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseYuan converts a decimal yuan string ("2.48", "10", "0.5") to fen
// exactly, without floating point. It accepts an optional leading minus,
// at most two decimals, and digits only; anything else is an error naming
// the input.
func ParseYuan(s string) (int64, error) {
	in := s
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || len(frac) > 2 || !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("providers: malformed yuan amount %q", in)
	}
	if len(whole) > 15 {
		return 0, fmt.Errorf("providers: yuan amount %q out of range", in)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("providers: malformed yuan amount %q", in)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64) // two digits, checked above
	fen := w*100 + f
	if neg {
		fen = -fen
	}
	return fen, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatYuan renders fen as a decimal yuan string with two decimals.
func FormatYuan(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign, u = "-", uint64(-fen)
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}
