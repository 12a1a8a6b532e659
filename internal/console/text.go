package console

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"orderflow/providers"
)

// inert makes a rendered page's control characters visible: C0 controls
// but tab, newline and carriage return (ESC among them), DEL, C1
// controls, and the bidirectional overrides and isolates become their
// escape as text ("\x1b", "\u202e"), so provider text can neither drive a
// terminal a page is copied into nor reorder what a person reads. Bytes
// that are not UTF-8 become U+FFFD. html/template has already escaped the
// markup; this pass runs on the whole page, so no field can be missed.
func inert(b []byte) []byte {
	clean := true
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if (r == utf8.RuneError && n == 1) || hidden(r) {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return b
	}
	var out strings.Builder
	out.Grow(len(b) + 64)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			out.WriteRune(utf8.RuneError)
		case hidden(r) && r < 0x80:
			fmt.Fprintf(&out, `\x%02x`, r)
		case hidden(r):
			fmt.Fprintf(&out, `\u%04x`, r)
		default:
			out.Write(b[i : i+n])
		}
		i += n
	}
	return []byte(out.String())
}

// hidden reports whether r is a control character a page must not carry
// as such.
func hidden(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"yuan": providers.FormatYuan,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("15:04:05Z")
	},
	"age":   age,
	"since": func(now, t time.Time) string { return age(now.Sub(t)) },
	"pct": func(used float64, of int) string {
		if of <= 0 {
			return "—"
		}
		return strconv.Itoa(int(used/float64(of)*100+0.5)) + "%"
	},
	"human": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
}

// age is a duration for a person: "45s", "12m", "3h05m", "2d04h".
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}
