package cli_test

import (
	"orderflow/internal/testkit"
	"os"
	"strings"
	"testing"
	"time"
)

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }

// waitContains waits until buf holds s.
func waitContains(tb testing.TB, buf *testkit.SyncBuffer, s string) {
	tb.Helper()
	testkit.WaitFor(tb, 10*time.Second, "output "+strings.TrimSpace(s)+" (have "+buf.String()+")", func() bool {
		return strings.Contains(buf.String(), s)
	})
}
