package redact_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"orderflow/internal/redact"
)

func TestURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"redis://127.0.0.1:6380", "redis://127.0.0.1:6380"},
		{"redis://:pw@h:1/2", "redis://:xxxxx@h:1/2"},
		{"rediss://user:pw@h:1", "rediss://user:xxxxx@h:1"},
		{"redis://user:p@w@h:x/0", "redis://user:xxxxx@h:x/0"}, // does not parse
		{"redis-sentinel://:pw@a:1,b:2?master=m", "redis-sentinel://:xxxxx@a:1,b:2?master=m"},
		{"redis://:pw@[::1", "redis://:xxxxx@[::1"}, // does not parse
		{"redis://user@h:1", "redis://user@h:1"},
		{"not a url", "not a url"},
	} {
		if got := redact.URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestURLIn(t *testing.T) {
	raw := "redis://:hunter2@[::1"
	msg := `parse "` + raw + `": missing ']' in host`
	if got, want := redact.URLIn(msg, raw), `parse "redis://:xxxxx@[::1": missing ']' in host`; got != want {
		t.Errorf("URLIn = %q, want %q", got, want)
	}
}

func TestProviderText(t *testing.T) {
	in := "\x1b[31mbad sign\x1b[0m: accessKey=AK123XYZ&_aop_signature=0A1B2C3D4E5F60718293A4B5C6D7E8F9 " +
		`"access_token":"tok-abc.def" Authorization: Bearer eyJhbGciOi.x.y appSecret: s3cr3t` + "\u202e " + strings.Repeat("x", 2000)
	got := redact.ProviderText(in)
	for _, secret := range []string{"AK123XYZ", "0A1B2C3D4E5F60718293A4B5C6D7E8F9", "tok-abc.def", "eyJhbGciOi", "s3cr3t", "\x1b", "\u202e"} {
		if strings.Contains(got, secret) {
			t.Errorf("ProviderText kept %q: %q", secret, got)
		}
	}
	if n := utf8.RuneCountInString(got); n > redact.MaxProviderText+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("ProviderText is %d characters, want the bound with …", n)
	}
	if !strings.Contains(got, "bad sign") || !strings.Contains(got, "accessKey=xxxxx") {
		t.Errorf("ProviderText lost the message: %q", got)
	}
	if ok := "R500_004: out of stock (offer 623456789012)"; redact.ProviderText(ok) != ok {
		t.Errorf("ProviderText(%q) = %q, want it unchanged", ok, redact.ProviderText(ok))
	}
}

func TestTerminal(t *testing.T) {
	for in, want := range map[string]string{
		"plain 李雷":                   "plain 李雷",
		"a\x1b[2Jb\x07":              "a[2Jb",
		"x\r\ny\tz":                  "x  y z",
		"\u202eevil\u2066\u0085\x00": "evil",
		"bad\xffutf8":                "badutf8",
	} {
		if got := redact.Terminal(in); got != want {
			t.Errorf("Terminal(%q) = %q, want %q", in, got, want)
		}
	}
}
