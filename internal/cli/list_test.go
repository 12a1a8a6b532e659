package cli_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"orderflow/internal/cli"
	"orderflow/internal/orders"
	"orderflow/providers"
)

func TestList(t *testing.T) {
	b := setup(t)
	b.create(t, providers.Depal, "R-1")
	b.create(t, providers.Xportcn, "R-2")
	b.create(t, providers.Depal, "P-1", providers.StatePreviewed)
	r := b.create(t, providers.Depal, "N-1", providers.StateNeedsReview)
	if _, err := b.store.Update(context.Background(), r.Key(), func(r *orders.Record) error {
		r.Error = &orders.ErrorInfo{Code: "CREATE_OUTCOME_UNKNOWN", Message: "ask a person"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	res := b.run(t, "", "list", "--state", "received", "--state", "needs_review,previewed")
	if res.code != cli.ExitOK {
		t.Fatalf("exit %d stderr %q", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("list printed %d lines, want 4:\n%s", len(lines), res.stdout)
	}
	line := regexp.MustCompile(`^(depal|xportcn) +([A-Z]-\d) +([a-z_]+) +\S+ +(\S+)$`)
	seen := map[string]string{}
	for _, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q is not provider outOrderId state age code", l)
		}
		seen[m[1]+"/"+m[2]] = m[3] + " " + m[4]
	}
	want := map[string]string{"depal/R-1": "received -", "xportcn/R-2": "received -", "depal/P-1": "previewed -",
		"depal/N-1": "needs_review CREATE_OUTCOME_UNKNOWN"}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("%s: %q, want %q (stdout:\n%s)", k, seen[k], v, res.stdout)
		}
	}

	res = b.run(t, "", "list", "--state", "received", "--provider", "xportcn", "--json")
	var got orders.Record
	if res.code != cli.ExitOK || strings.Count(res.stdout, "\n") != 1 || json.Unmarshal([]byte(res.stdout), &got) != nil ||
		got.Key() != (orders.Key{Provider: providers.Xportcn, OutOrderID: "R-2"}) || got.State != providers.StateReceived {
		t.Fatalf("--json: exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	res = b.run(t, "", "list", "--limit", "2")
	if res.code != cli.ExitOK || strings.Count(res.stdout, "\n") != 2 {
		t.Fatalf("--limit 2: exit %d stdout %q", res.code, res.stdout)
	}
	// All four entered their state at t0 plus a few seconds: long ago.
	res = b.run(t, "", "list", "--since", time.Hour.String())
	if res.code != cli.ExitOK || res.stdout != "" {
		t.Fatalf("--since 1h: exit %d stdout %q", res.code, res.stdout)
	}
	for _, bad := range [][]string{
		{"list", "--state", "sleeping"}, {"list", "--limit", "0"}, {"list", "--provider", "amazon"},
		{"list", "X-1"}, {"list", "--since", "-1h"},
	} {
		if res := b.run(t, "", bad...); res.code != cli.ExitUnavailable {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", bad, res.code, res.stderr)
		}
	}
}

func TestFind(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	r := b.create(t, providers.Xportcn, "F-1", providers.StateShipped)
	if err := b.store.Link(ctx, r.Key(), []string{"7001"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Update(ctx, r.Key(), func(r *orders.Record) error {
		r.Parcels = []orders.Parcel{{OrderID: "7001", ParcelRef: providers.ParcelRef{Carrier: "SF", BillNo: "SF900"}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"7001", "SF900"} {
		res := b.run(t, "", "find", id)
		if res.code != cli.ExitOK || !strings.HasPrefix(res.stdout, "xportcn/F-1\n  state:    shipped\n") ||
			!strings.Contains(res.stdout, "  parcel:   SF SF900\n") {
			t.Errorf("find %s: exit %d stdout:\n%s\nstderr %q", id, res.code, res.stdout, res.stderr)
		}
	}
	res := b.run(t, "", "find", "--json", "SF900")
	var got orders.Record
	if res.code != cli.ExitOK || json.Unmarshal([]byte(res.stdout), &got) != nil || got.Key() != r.Key() {
		t.Errorf("find --json: exit %d stdout %q", res.code, res.stdout)
	}
	res = b.run(t, "", "find", "NOPE")
	if res.code != cli.ExitFailed || res.stdout != "" || !strings.Contains(res.stderr, "NOPE: no order has this") {
		t.Errorf("find NOPE: exit %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if res := b.run(t, "", "find"); res.code != cli.ExitUnavailable {
		t.Errorf("find without an id: exit %d", res.code)
	}
}
