package redistest

import (
	"context"
	"testing"
)

func TestForEach(t *testing.T) {
	ForEach(t, func(t *testing.T, s *Server) {
		c := s.Client(t)
		ctx := context.Background()
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got := c.Get(ctx, "k").Val(); got != "v" {
			t.Fatalf("GET k = %q, want v", got)
		}
	})
}

func TestRestartKeepsAOF(t *testing.T) {
	s := Real(t, "appendonly yes", "appendfsync always")
	c := s.Client(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	if got := c.Get(ctx, "k").Val(); got != "v" {
		t.Fatalf("after restart GET k = %q, want v", got)
	}
}
