package testkit_test

import (
	"context"
	"os"
	"testing"

	"orderflow/internal/testkit"
)

// The worker builds from any working directory (the chaos run's used to
// look for cmd/worker under internal/).
func TestBuildWorkerInto(t *testing.T) {
	t.Chdir(t.TempDir())
	bin, err := testkit.BuildWorkerInto(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("no executable at %s: %v", bin, err)
	}
}
