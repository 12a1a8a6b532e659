package redact_test

import (
	"testing"

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
