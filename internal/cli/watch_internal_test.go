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
