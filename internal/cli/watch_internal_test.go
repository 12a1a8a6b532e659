package cli

import (
	"bytes"
	"testing"

	"orderflow/internal/orders"
	"orderflow/providers"
)

func TestProgressOnATerminalRedrawsInPlace(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true}
	states := map[orders.Key]providers.State{
		{Provider: "depal", OutOrderID: "a"}: providers.StatePaid,
		{Provider: "depal", OutOrderID: "b"}: providers.StateCompleted,
		{Provider: "depal", OutOrderID: "c"}: stateGone,
	}
	if done := p.show(states); done != 2 {
		t.Errorf("done = %d, want 2", done)
	}
	p.show(states) // unchanged: drawn again on a terminal
	var out bytes.Buffer
	p.finish(&out, states)
	line := "\r[####################----------] 2/3 done  paid 1, completed 1, gone 1\x1b[K"
	if want := line + line + "\n"; buf.String() != want {
		t.Errorf("terminal output %q, want %q", buf.String(), want)
	}
	if want := "paid\t1\ncompleted\t1\ngone\t1\ntotal\t3\n"; out.String() != want {
		t.Errorf("final counts %q, want %q", out.String(), want)
	}
}

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"redis://127.0.0.1:6380", "redis://127.0.0.1:6380"},
		{"redis://:pw@h:1/2", "redis://:xxxxx@h:1/2"},
		{"rediss://user:pw@h:1", "rediss://user:xxxxx@h:1"},
		{"redis://user:p@w@h:x/0", "redis://user:xxxxx@h:x/0"}, // does not parse
		{"redis-sentinel://:pw@a:1,b:2?master=m", "redis-sentinel://:xxxxx@a:1,b:2?master=m"},
		{"redis://:pw@[::1", "redis://:xxxxx@[::1"}, // does not parse
		{"redis://user@h:1", "redis://user@h:1"},
	} {
		if got := redactURL(c.in); got != c.want {
			t.Errorf("redactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
