package metrics

import (
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orderflow/providers"
)

// interfaceDoc is the user documentation every metric must appear in.
const interfaceDoc = "../../docs/interface.md"

// standardPrefixes are the Go runtime and process collectors' families:
// documented as groups (`go_*`, `process_*`), not one by one.
var standardPrefixes = []string{"go_", "process_"}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)
var descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)

// family is a metric family and its variable labels.
type family struct {
	name   string
	labels []string
}

// describedFamilies describes every collector held in a field of m, so a
// family is found even before it has a series.
func describedFamilies(tb testing.TB, m *Metrics) map[string]family {
	tb.Helper()
	out := map[string]family{}
	collector := reflect.TypeFor[prometheus.Collector]()
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.Type().Implements(collector) || f.IsNil() {
			continue
		}
		c := reflect.NewAt(f.Type(), f.Addr().UnsafePointer()).Elem().Interface().(prometheus.Collector)
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			s := d.String()
			n := descName.FindStringSubmatch(s)
			if n == nil {
				tb.Fatalf("cannot read the name of %s: the Desc format changed; update this test", s)
			}
			fam := family{name: n[1]}
			if l := descLabels.FindStringSubmatch(s); l != nil && l[1] != "" {
				fam.labels = strings.Split(l[1], ",")
			}
			out[fam.name] = fam
		}
	}
	return out
}

// gatheredFamilies gathers the registry after giving every observer method
// a series and building the handler (which registers its own counter).
func gatheredFamilies(tb testing.TB, m *Metrics) map[string]family {
	tb.Helper()
	m.Request(providers.Xportcn, "preview", providers.ClassNone, time.Millisecond)
	m.LimiterWait(providers.Xportcn, 0)
	m.Deferred(providers.Xportcn, providers.ReasonRateLimit)
	m.BreakerState(providers.Xportcn, "closed")
	m.TaskProcessed("order:preview", "ok", time.Millisecond)
	m.OrderTransition(providers.Xportcn, "received", "previewed")
	m.OrdersInState(func() map[string]map[string]int64 {
		return map[string]map[string]int64{providers.Xportcn: {"received": 1}}
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	mfs, err := m.Registry().Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	out := map[string]family{}
	for _, mf := range mfs {
		fam := family{name: mf.GetName()}
		if ms := mf.GetMetric(); len(ms) > 0 {
			for _, lp := range ms[0].GetLabel() {
				fam.labels = append(fam.labels, lp.GetName())
			}
		}
		out[fam.name] = fam
	}
	return out
}

func standard(name string) bool {
	for _, p := range standardPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// TestDocsMetrics: every metric family the registry exports is in the
// interface doc as `name`, on a line that names each of its labels; the
// standard Go and process families are documented as `go_*`, `process_*`.
func TestDocsMetrics(t *testing.T) {
	b, err := os.ReadFile(interfaceDoc)
	if err != nil {
		t.Fatalf("read the interface doc: %v", err)
	}
	doc := string(b)
	m := New()
	fams := describedFamilies(t, m)
	for name, f := range gatheredFamilies(t, m) {
		if _, ok := fams[name]; !ok || len(fams[name].labels) == 0 {
			fams[name] = f
		}
	}
	if _, ok := fams["orderflow_orders"]; !ok {
		t.Fatalf("found %d families, not orderflow_orders: reading the registry no longer works; update this test", len(fams))
	}
	names := make([]string, 0, len(fams))
	for name := range fams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, p := range standardPrefixes {
		if !strings.Contains(doc, "`"+p+"*`") {
			t.Errorf("the standard %s* families are not mentioned in %s (write `%s*`)", p, interfaceDoc, p)
		}
	}
	for _, name := range names {
		if standard(name) {
			continue
		}
		quoted := "`" + name + "`"
		if !strings.Contains(doc, quoted) {
			t.Errorf("metric %s is not documented in %s (write it as %s)", name, interfaceDoc, quoted)
			continue
		}
		line := docLine(doc, "| "+quoted+" |")
		if line == "" {
			t.Errorf("metric %s has no row of its own in the metrics table of %s", name, interfaceDoc)
			continue
		}
		for _, l := range fams[name].labels {
			if !strings.Contains(line, "`"+l+"`") {
				t.Errorf("metric %s: its label %s is not named in its row of %s", name, l, interfaceDoc)
			}
		}
	}
}

// docLine is the first line of doc starting with prefix, or "".
func docLine(doc, prefix string) string {
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}
