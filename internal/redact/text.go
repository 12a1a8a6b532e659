package redact

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxProviderText is the most characters of a provider's error text that
// orderflow keeps (in a record, the event stream, a callback, a log).
const MaxProviderText = 500

// Redacted replaces a value that looks like a credential.
const Redacted = "xxxxx"

// credential matches name=value, name: value and "name":"value" pairs whose
// name says credential (access key, secret, signature, sign, token,
// password, authorization, api key), and bearer tokens.
var (
	credential = regexp.MustCompile(`(?i)\b([\w-]*(?:key|secret|signature|sign|token|password|passwd|authorization|credential)[\w-]*"?\s*[:=]\s*"?)([^\s"'&,;{}<>]+)`)
	bearer     = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+`)
	// longHex is a bare hex digest (a signature echoed without its name).
	longHex = regexp.MustCompile(`\b[0-9a-fA-F]{32,}\b`)
)

// Credentials returns s with every value that looks like a credential
// replaced by Redacted.
func Credentials(s string) string {
	s = bearer.ReplaceAllString(s, "${1} "+Redacted)
	s = credential.ReplaceAllString(s, "${1}"+Redacted)
	return longHex.ReplaceAllString(s, Redacted)
}

// ProviderText makes a provider's free text safe to keep: control
// characters stripped (Terminal), credential-looking values redacted
// (Credentials), cut to MaxProviderText characters with "…".
func ProviderText(s string) string {
	if len(s) > 4*MaxProviderText+64 {
		s = s[:4*MaxProviderText+64] // enough for the bound; Terminal drops a cut rune
	}
	s = Credentials(Terminal(s))
	if utf8.RuneCountInString(s) > MaxProviderText {
		r := []rune(s)
		s = string(r[:MaxProviderText]) + "…"
	}
	return s
}

// Terminal returns s without what could steer a terminal: C0 controls
// (tab, CR and LF become a space), DEL, C1 controls (and so every escape
// sequence's introducer), line and paragraph separators, bidirectional
// overrides and isolates (U+202A–U+202E, U+2066–U+2069), and invalid
// UTF-8. Print every text that came from a provider or an upstream
// through it.
func Terminal(s string) string {
	clean := true
	for _, r := range s {
		if dropped(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case dropped(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func dropped(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == utf8.RuneError ||
		r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}
