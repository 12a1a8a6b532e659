package app

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"orderflow/providers"
)

// interfaceDoc is the user documentation every admin route and setting must
// appear in.
const interfaceDoc = "../../docs/interface.md"

// settingsSources are the files whose environment reads are the settings
// (the worker's and the enqueue command's).
var settingsSources = []string{"settings.go", "../cli/settings.go"}

func readDoc(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(interfaceDoc)
	if err != nil {
		tb.Fatalf("read the interface doc: %v", err)
	}
	return string(b)
}

// adminPatterns returns the patterns admin.go registers on its mux
// (mux.Handle / mux.HandleFunc with a string literal), in source order.
func adminPatterns(tb testing.TB) []string {
	tb.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "admin.go", nil, 0)
	if err != nil {
		tb.Fatalf("parse admin.go: %v", err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "mux" {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			tb.Fatalf("%s: a route registered with a pattern that is not a string literal: this test cannot read it", fset.Position(call.Pos()))
		}
		p, err := strconv.Unquote(lit.Value)
		if err != nil {
			tb.Fatalf("%s: %v", fset.Position(lit.Pos()), err)
		}
		out = append(out, p)
		return true
	})
	if len(out) == 0 {
		tb.Fatal("found no mux.Handle/mux.HandleFunc in admin.go: the way routes are registered changed; update this test")
	}
	return out
}

// examplePath turns a pattern's path into a request path ({x} -> x).
func examplePath(path string) string {
	return regexp.MustCompile(`\{([^}.]+)(\.\.\.)?\}`).ReplaceAllString(path, "$1")
}

// TestDocsAdminRoutes: every route of the admin listener is in the
// interface doc, written as registered ("GET /healthz", "/monitoring/").
// The routes are read from admin.go and each is checked against the real
// mux, so the source reading cannot drift from what is served.
func TestDocsAdminRoutes(t *testing.T) {
	doc := readDoc(t)
	admin := AdminHandler(AdminConfig{
		Redis:   asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, // never dialled here
		Metrics: http.NotFoundHandler(),
	})
	defer func() { _ = admin.Close() }()
	mux, ok := admin.Handler.(*http.ServeMux)
	if !ok {
		t.Fatalf("AdminHandler no longer serves a *http.ServeMux (%T): update this test", admin.Handler)
	}
	for _, pattern := range adminPatterns(t) {
		method, path, hasMethod := strings.Cut(pattern, " ")
		if !hasMethod {
			method, path = http.MethodGet, pattern
		}
		req := httptest.NewRequest(method, examplePath(path), nil)
		if _, got := mux.Handler(req); got != pattern {
			t.Errorf("%q read from admin.go, but the mux routes %s %s to %q", pattern, method, req.URL.Path, got)
		}
		if !strings.Contains(doc, "`"+pattern+"`") {
			t.Errorf("admin route %q is not documented in %s (write it as `%s`)", pattern, interfaceDoc, pattern)
		}
	}
}

// recordedEnv is a getenv that records the names asked for.
type recordedEnv map[string]bool

func (r recordedEnv) getenv(name string) string { r[name] = true; return "" }

// envSettings lists the environment variables the settings sources read:
// getenv("X"), xxxVar(getenv, "X", ...), the per-provider up+"_X", and
// whatever FromEnv really asks for.
func envSettings(tb testing.TB) []string {
	tb.Helper()
	known := map[string]bool{}
	for _, file := range settingsSources {
		b, err := os.ReadFile(file)
		if err != nil {
			tb.Fatalf("read %s: %v", file, err)
		}
		src := string(b)
		for _, m := range regexp.MustCompile(`getenv(?:\(|, )"([A-Z0-9_]+)"`).FindAllStringSubmatch(src, -1) {
			known[m[1]] = true
		}
		for _, m := range regexp.MustCompile(`up\s*\+\s*"(_[A-Z0-9_]+)"`).FindAllStringSubmatch(src, -1) {
			for _, p := range providers.Names {
				known[strings.ToUpper(p)+m[1]] = true
			}
		}
	}
	asked := recordedEnv{}
	if _, err := FromEnv(asked.getenv); err != nil {
		tb.Fatalf("FromEnv with an empty environment: %v", err)
	}
	for name := range asked {
		if !known[name] {
			tb.Errorf("FromEnv reads %s but the source patterns did not find it: update envSettings", name)
		}
		known[name] = true
	}
	for _, must := range []string{"REDIS_URL", "XPORTCN_RATE", "ORDER_DEADLINE"} {
		if !known[must] {
			tb.Fatalf("reading %v found %v: the patterns no longer match how settings are read", settingsSources, known)
		}
	}
	out := make([]string, 0, len(known))
	for name := range known {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// TestDocsSettings: every environment variable the worker or the enqueue
// command reads is in the interface doc, as `NAME`.
func TestDocsSettings(t *testing.T) {
	doc := readDoc(t)
	for _, name := range envSettings(t) {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("setting %s is not documented in %s (write it as `%s`)", name, interfaceDoc, name)
		}
	}
}
