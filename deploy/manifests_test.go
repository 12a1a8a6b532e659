package deploy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gopkg.in/yaml.v3"

	"orderflow/internal/app"
	"orderflow/internal/fakeprovider"
	"orderflow/internal/metrics"
	"orderflow/internal/pipeline"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/tasks"
)

// The drain budget: terminationGracePeriodSeconds > SHUTDOWN_TIMEOUT +
// adminCloseTimeout, and SHUTDOWN_TIMEOUT > longestTaskTimeout. The
// worker's asynq servers (one per provider, and notify) drain at the same
// time, so SHUTDOWN_TIMEOUT counts once however many providers it serves.
const (
	// longestTaskTimeout is the asynq Timeout of the longest task type.
	longestTaskTimeout = pipeline.LongestTimeout
	// adminCloseTimeout is how long app.Run gives the admin HTTP server to
	// close after the asynq servers drained.
	adminCloseTimeout = app.AdminCloseTimeout
)

const (
	manifestDir = "kubernetes"
	baseDir     = "kubernetes/base"
	// exampleSecret is documentation, deliberately not a resource.
	exampleSecret = "secret.example.yaml"
	dashboardFile = "grafana/orderflow.json"
	dockerfile    = "Dockerfile"
	settingsFile  = "../internal/app/settings.go"
	workerName    = "worker"
)

// requiredLabels are set on every resource; the Deployment and its pods
// also carry app.kubernetes.io/version.
var requiredLabels = []string{
	"app.kubernetes.io/name", "app.kubernetes.io/instance",
	"app.kubernetes.io/component", "app.kubernetes.io/part-of",
}

// secretLooking matches env names whose value must come from a Secret.
var secretLooking = regexp.MustCompile(`(SECRET|TOKEN|PASSWORD|_KEY$|^REDIS_URL$)`)

// mustBeSecret are the secrets named in docs/interface.md and the README; each
// must be set, from a secretKeyRef.
var mustBeSecret = []string{
	"REDIS_URL", "ADMIN_TOKEN", "CALLBACK_SECRET",
	"XPORTCN_ACCESS_KEY", "XPORTCN_ACCESS_SECRET", "DEPAL_APP_KEY", "DEPAL_APP_SECRET",
}

// outsideMetrics are the only metrics not registered by metrics.New() that
// an alert may use: Prometheus's own scrape health and kube-state-metrics.
var outsideMetrics = map[string]bool{
	"up":                    true, // Prometheus: target scraped
	"kube_pod_status_ready": true, // kube-state-metrics: pod Ready condition
}

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"namespace", "pod", "job", "instance", "service", "endpoint", "container"}

// doc is one YAML document of the manifests.
type doc struct {
	file string
	kind string
	name string
	node *yaml.Node
}

type meta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type header struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type deployment struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Selector selector `yaml:"selector"`
		Template struct {
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot   *bool          `yaml:"runAsNonRoot"`
		SeccompProfile seccompProfile `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
}

type seccompProfile struct {
	Type string `yaml:"type"`
}

type container struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env            []envVar `yaml:"env"`
	LivenessProbe  *probe   `yaml:"livenessProbe"`
	ReadinessProbe *probe   `yaml:"readinessProbe"`
	StartupProbe   *probe   `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
		SeccompProfile seccompProfile `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
}

type envVar struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type service struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// manifests holds the parsed deploy/kubernetes tree.
type manifests struct {
	docs []doc
}

// loadManifests parses every YAML document under deploy/kubernetes.
func loadManifests(tb testing.TB) *manifests {
	tb.Helper()
	m := &manifests{}
	err := filepath.WalkDir(manifestDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		for i := 0; ; i++ {
			var n yaml.Node
			if err := dec.Decode(&n); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s document %d: %w", path, i+1, err)
			}
			var h header
			if err := n.Decode(&h); err != nil {
				return fmt.Errorf("%s document %d: %w", path, i+1, err)
			}
			if h.Kind == "" {
				return fmt.Errorf("%s document %d has no kind", path, i+1)
			}
			m.docs = append(m.docs, doc{file: path, kind: h.Kind, name: h.Metadata.Name, node: &n})
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(m.docs) == 0 {
		tb.Fatalf("no YAML documents under %s", manifestDir)
	}
	return m
}

// one decodes the single document of kind (named name, when not empty)
// into v.
func (m *manifests) one(tb testing.TB, kind, name string, v any) {
	tb.Helper()
	var found []doc
	for _, d := range m.docs {
		if d.kind == kind && (name == "" || d.name == name) && filepath.Base(d.file) != exampleSecret {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("want exactly one %s %q in %s, found %d", kind, name, manifestDir, len(found))
	}
	if err := found[0].node.Decode(v); err != nil {
		tb.Fatalf("%s: %s: %v", found[0].file, kind, err)
	}
}

func (m *manifests) worker(tb testing.TB) (*deployment, *container) {
	tb.Helper()
	var d deployment
	m.one(tb, "Deployment", "", &d)
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == workerName {
			return &d, c
		}
	}
	tb.Fatalf("Deployment %s has no container %q", d.Metadata.Name, workerName)
	return nil, nil
}

func (c *container) env(name string) (envVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return envVar{}, false
}

func (c *container) portNamed(name string) (int, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func (c *container) probes() map[string]*probe {
	out := map[string]*probe{}
	for name, p := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p != nil {
			out[name] = p
		}
	}
	return out
}

func TestKustomizationListsEveryResource(t *testing.T) {
	var k struct {
		Resources []string `yaml:"resources"`
	}
	m := loadManifests(t)
	m.one(t, "Kustomization", "", &k)
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if listed[r] {
			t.Errorf("kustomization lists %s twice", r)
		}
		listed[r] = true
		if _, err := os.Stat(filepath.Join(baseDir, r)); err != nil {
			t.Errorf("kustomization lists %s: %v", r, err)
		}
	}
	files, err := filepath.Glob(filepath.Join(baseDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		switch {
		case base == "kustomization.yaml":
		case base == exampleSecret:
			if listed[base] {
				t.Errorf("%s is an example and must not be a resource (secrets stay out of git)", base)
			}
		case !listed[base]:
			t.Errorf("%s is not listed in %s/kustomization.yaml resources", base, baseDir)
		}
	}
}

func TestLabels(t *testing.T) {
	m := loadManifests(t)
	for _, d := range m.docs {
		if d.kind == "Kustomization" {
			continue
		}
		var h header
		if err := d.node.Decode(&h); err != nil {
			t.Fatal(err)
		}
		for _, l := range requiredLabels {
			if h.Metadata.Labels[l] == "" {
				t.Errorf("%s %s (%s): label %s not set", d.kind, d.name, d.file, l)
			}
		}
	}

	dep, _ := m.worker(t)
	tmpl := dep.Spec.Template.Metadata.Labels
	for _, labels := range []map[string]string{dep.Metadata.Labels, tmpl} {
		for _, l := range append(slices.Clone(requiredLabels), "app.kubernetes.io/version") {
			if labels[l] == "" {
				t.Errorf("Deployment %s: label %s not set on the Deployment and its pods", dep.Metadata.Name, l)
			}
		}
	}
	sel := dep.Spec.Selector.MatchLabels
	if len(sel) == 0 {
		t.Fatal("Deployment has no selector.matchLabels")
	}
	if _, ok := sel["app.kubernetes.io/version"]; ok {
		t.Error("Deployment selector holds app.kubernetes.io/version: selectors are immutable, an upgrade could not apply")
	}
	if !subset(sel, tmpl) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", sel, tmpl)
	}

	var svc service
	m.one(t, "Service", "", &svc)
	if !sameLabels(svc.Spec.Selector, sel) {
		t.Errorf("Service selector %v differs from the Deployment selector %v", svc.Spec.Selector, sel)
	}
	var pdb struct {
		Spec struct {
			Selector selector `yaml:"selector"`
		} `yaml:"spec"`
	}
	m.one(t, "PodDisruptionBudget", "", &pdb)
	if !sameLabels(pdb.Spec.Selector.MatchLabels, sel) {
		t.Errorf("PodDisruptionBudget selector %v differs from the Deployment selector %v", pdb.Spec.Selector.MatchLabels, sel)
	}
	var sm struct {
		Spec struct {
			Selector  selector `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	m.one(t, "ServiceMonitor", "", &sm)
	if !subset(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
		t.Errorf("ServiceMonitor selector %v does not select the Service (labels %v)", sm.Spec.Selector.MatchLabels, svc.Metadata.Labels)
	}
	for _, ep := range sm.Spec.Endpoints {
		if !slices.ContainsFunc(svc.Spec.Ports, func(p struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		}) bool {
			return p.Name == ep.Port
		}) {
			t.Errorf("ServiceMonitor endpoint port %q is not a Service port name", ep.Port)
		}
		if ep.Path != "/metrics" {
			t.Errorf("ServiceMonitor scrapes %q, the worker serves /metrics", ep.Path)
		}
	}
}

func TestPortsAreNamedAndDeclared(t *testing.T) {
	m := loadManifests(t)
	_, c := m.worker(t)
	port, ok := c.portNamed("admin")
	if !ok {
		t.Fatalf("container %s declares no port named admin", c.Name)
	}
	probes := c.probes()
	for _, want := range []string{"liveness", "readiness"} {
		if probes[want] == nil {
			t.Errorf("container %s has no %s probe", c.Name, want)
		}
	}
	for kind, p := range probes {
		if p.HTTPGet == nil {
			t.Errorf("%s probe is not an httpGet", kind)
			continue
		}
		name, isName := p.HTTPGet.Port.(string)
		if !isName {
			t.Errorf("%s probe port %v is a number: name a container port", kind, p.HTTPGet.Port)
		} else if _, ok := c.portNamed(name); !ok {
			t.Errorf("%s probe port %q is not a declared container port", kind, name)
		}
	}
	if c.LivenessProbe != nil && c.ReadinessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet != nil &&
		c.LivenessProbe.HTTPGet.Path == c.ReadinessProbe.HTTPGet.Path {
		t.Errorf("liveness and readiness probe the same path %s: a Redis outage would restart every pod", c.LivenessProbe.HTTPGet.Path)
	}

	var svc service
	m.one(t, "Service", "", &svc)
	if len(svc.Spec.Ports) == 0 {
		t.Fatal("Service has no ports")
	}
	for _, p := range svc.Spec.Ports {
		name, isName := p.TargetPort.(string)
		if !isName {
			t.Errorf("Service port %q targetPort %v is not a name", p.Name, p.TargetPort)
		} else if _, ok := c.portNamed(name); !ok {
			t.Errorf("Service port %q targetPort %q is not a container port name", p.Name, name)
		}
	}

	// ADMIN_ADDR must listen on every interface on the declared port.
	e, ok := c.env("ADMIN_ADDR")
	if !ok || e.Value == nil {
		t.Fatal("ADMIN_ADDR is not set: the worker would listen on loopback only")
	}
	host, p, err := splitHostPort(*e.Value)
	if err != nil {
		t.Fatalf("ADMIN_ADDR %q: %v", *e.Value, err)
	}
	if app.IsLoopback(*e.Value) || (host != "0.0.0.0" && host != "" && host != "::") {
		t.Errorf("ADMIN_ADDR %q does not listen on the pod's interfaces", *e.Value)
	}
	if p != port {
		t.Errorf("ADMIN_ADDR port %d differs from the admin container port %d", p, port)
	}
	if e, ok := c.env("ADMIN_TOKEN"); !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Error("ADMIN_ADDR is not loopback, so ADMIN_TOKEN must be set from a Secret (the worker refuses to start without it)")
	}

	// The image exposes the same port.
	df := readFile(t, dockerfile)
	if exposed := regexp.MustCompile(`(?m)^EXPOSE\s+(\d+)`).FindStringSubmatch(df); exposed == nil || exposed[1] != strconv.Itoa(port) {
		t.Errorf("Dockerfile EXPOSE %v differs from the admin container port %d", exposed, port)
	}
}

func TestProbePathsAreWorkerRoutes(t *testing.T) {
	m := loadManifests(t)
	_, c := m.worker(t)
	var sm struct {
		Spec struct {
			Endpoints []struct {
				Path string `yaml:"path"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	m.one(t, "ServiceMonitor", "", &sm)

	srv := redistest.Mini(t)
	opt := asynq.RedisClientOpt{Addr: srv.Addr}
	w, err := app.New(app.Config{
		Redis:     opt,
		Providers: map[string]providers.Provider{providers.Xportcn: fakeprovider.New(providers.Xportcn)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	// A token is set, as in the manifest: the kubelet and Prometheus send
	// none, so their paths must not be behind it.
	h := app.AdminHandler(app.AdminConfig{Worker: w, Redis: opt, Metrics: metrics.New().Handler(), Token: "probe-test-token"})

	paths := map[string]string{}
	for kind, p := range c.probes() {
		if p.HTTPGet != nil {
			paths[kind+" probe"] = p.HTTPGet.Path
		}
	}
	for i, ep := range sm.Spec.Endpoints {
		paths[fmt.Sprintf("ServiceMonitor endpoint %d", i)] = ep.Path
	}
	for what, path := range paths {
		t.Run(what, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK {
				t.Errorf("GET %s on the worker's admin handler (started, Redis up, token set) = %d %q, want 200",
					path, rec.Code, strings.TrimSpace(rec.Body.String()))
			}
		})
	}
}

func TestDrainBudget(t *testing.T) {
	m := loadManifests(t)
	dep, c := m.worker(t)
	grace := dep.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil {
		t.Fatal("terminationGracePeriodSeconds is not set (the default 30s is below the longest task timeout)")
	}
	e, ok := c.env("SHUTDOWN_TIMEOUT")
	if !ok || e.Value == nil {
		t.Fatalf("SHUTDOWN_TIMEOUT is not set: the grace period is budgeted against it, so set it here (the worker's default is %v)", app.DefaultShutdownTimeout)
	}
	drain, err := time.ParseDuration(*e.Value)
	if err != nil {
		t.Fatalf("SHUTDOWN_TIMEOUT %q: %v", *e.Value, err)
	}
	if drain <= longestTaskTimeout {
		t.Errorf("SHUTDOWN_TIMEOUT %v must exceed the longest task timeout %v, or a drain cuts running calls", drain, longestTaskTimeout)
	}
	if g := time.Duration(*grace) * time.Second; g <= drain+adminCloseTimeout {
		t.Errorf("terminationGracePeriodSeconds %v must exceed SHUTDOWN_TIMEOUT %v + the admin close %v, or the kubelet kills the drain",
			g, drain, adminCloseTimeout)
	}
}

func TestSecretsComeFromSecretKeyRef(t *testing.T) {
	m := loadManifests(t)
	_, c := m.worker(t)
	var example struct {
		StringData map[string]string `yaml:"stringData"`
	}
	exampleDoc := filepath.Join(baseDir, exampleSecret)
	if err := yaml.Unmarshal([]byte(readFile(t, exampleDoc)), &example); err != nil {
		t.Fatalf("%s: %v", exampleDoc, err)
	}
	seen := map[string]bool{}
	for _, e := range c.Env {
		if seen[e.Name] {
			t.Errorf("env %s set twice", e.Name)
		}
		seen[e.Name] = true
		ref := e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		if secretLooking.MatchString(e.Name) && (!ref || e.Value != nil) {
			t.Errorf("env %s looks secret but is not (only) from a secretKeyRef", e.Name)
		}
		if ref {
			if _, ok := example.StringData[e.ValueFrom.SecretKeyRef.Key]; !ok {
				t.Errorf("env %s reads key %s, which %s does not document", e.Name, e.ValueFrom.SecretKeyRef.Key, exampleDoc)
			}
		}
	}
	for _, name := range mustBeSecret {
		if e, ok := c.env(name); !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s must be set from a secretKeyRef", name)
		}
	}
}

func TestEnvNamesAreWorkerSettings(t *testing.T) {
	known := workerSettings(t)
	_, c := loadManifests(t).worker(t)
	for _, e := range c.Env {
		if known[e.Name] {
			continue
		}
		t.Errorf("env %s is not a setting internal/app/settings.go reads (a typo is silently ignored by the worker)", e.Name)
	}
}

// workerSettings lists the env names internal/app/settings.go reads: getenv("X"),
// xxxVar(getenv, "X", ...) and the per-provider up+"_X".
func workerSettings(tb testing.TB) map[string]bool {
	tb.Helper()
	src := readFile(tb, settingsFile)
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`getenv(?:\(|, )"([A-Z0-9_]+)"`).FindAllStringSubmatch(src, -1) {
		known[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`up\s*\+\s*"(_[A-Z0-9_]+)"`).FindAllStringSubmatch(src, -1) {
		for _, p := range providers.Names {
			known[strings.ToUpper(p)+m[1]] = true
		}
	}
	if !known["REDIS_URL"] || !known["XPORTCN_RATE"] {
		tb.Fatalf("reading %s found %v: the pattern no longer matches how settings are read", settingsFile, known)
	}
	return known
}

func TestSecurityContext(t *testing.T) {
	m := loadManifests(t)
	dep, c := m.worker(t)
	pod := dep.Spec.Template.Spec
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Error(what)
		}
	}
	check("pod securityContext.runAsNonRoot must be true", isTrue(pod.SecurityContext.RunAsNonRoot))
	check("pod seccompProfile must be RuntimeDefault", pod.SecurityContext.SeccompProfile.Type == "RuntimeDefault")
	sc := c.SecurityContext
	check("container runAsNonRoot must be true", isTrue(sc.RunAsNonRoot))
	check("container readOnlyRootFilesystem must be true", isTrue(sc.ReadOnlyRootFilesystem))
	check("container allowPrivilegeEscalation must be false", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation)
	check("container capabilities must drop ALL", slices.Contains(sc.Capabilities.Drop, "ALL"))
	check("container seccompProfile must be RuntimeDefault", sc.SeccompProfile.Type == "RuntimeDefault")
	for _, r := range []string{"cpu", "memory"} {
		check("resources.requests."+r+" must be set", c.Resources.Requests[r] != "")
	}
	check("resources.limits.memory must be set", c.Resources.Limits["memory"] != "")

	// The image runs as a numeric non-root user, so runAsNonRoot can verify it.
	df := readFile(t, dockerfile)
	users := regexp.MustCompile(`(?m)^USER\s+(\d+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 || users[len(users)-1][1] == "0" {
		t.Errorf("Dockerfile: the final stage needs a numeric non-root USER, found %v", users)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "./cmd/worker", "./cmd/enqueue", `ENTRYPOINT ["/usr/local/bin/worker"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile does not contain %q", want)
		}
	}
}

func TestScaledObjectWatchesEveryQueue(t *testing.T) {
	m := loadManifests(t)
	dep, _ := m.worker(t)
	var so struct {
		Spec struct {
			ScaleTargetRef struct {
				Kind string `yaml:"kind"`
				Name string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicaCount *int `yaml:"minReplicaCount"`
			MaxReplicaCount *int `yaml:"maxReplicaCount"`
			Triggers        []struct {
				Type              string            `yaml:"type"`
				Metadata          map[string]string `yaml:"metadata"`
				AuthenticationRef struct {
					Name string `yaml:"name"`
				} `yaml:"authenticationRef"`
			} `yaml:"triggers"`
		} `yaml:"spec"`
	}
	m.one(t, "ScaledObject", "", &so)
	if so.Spec.ScaleTargetRef.Kind != "Deployment" || so.Spec.ScaleTargetRef.Name != dep.Metadata.Name {
		t.Errorf("ScaledObject targets %s %q, want Deployment %q", so.Spec.ScaleTargetRef.Kind, so.Spec.ScaleTargetRef.Name, dep.Metadata.Name)
	}
	// Never zero: pushes, /v1/orders and the polling of live orders need a worker.
	if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1 {
		t.Error("ScaledObject minReplicaCount must be at least 1")
	}
	if so.Spec.MaxReplicaCount == nil || (so.Spec.MinReplicaCount != nil && *so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount) {
		t.Error("ScaledObject maxReplicaCount must be set and at least minReplicaCount")
	}
	var want []string
	for _, p := range providers.Names {
		for q := range pipeline.Queues(p) {
			want = append(want, "asynq:{"+q+"}:pending")
		}
	}
	var got []string
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "redis" {
			continue
		}
		got = append(got, tr.Metadata["listName"])
		if n, err := strconv.Atoi(tr.Metadata["listLength"]); err != nil || n < 1 {
			t.Errorf("trigger %s: listLength %q is not a positive integer", tr.Metadata["listName"], tr.Metadata["listLength"])
		}
		var auth struct {
			Spec struct {
				SecretTargetRef []struct {
					Parameter string `yaml:"parameter"`
					Name      string `yaml:"name"`
				} `yaml:"secretTargetRef"`
			} `yaml:"spec"`
		}
		m.one(t, "TriggerAuthentication", tr.AuthenticationRef.Name, &auth)
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("ScaledObject redis triggers watch\n  %v\nwant asynq's pending list of every queue\n  %v", got, want)
	}
}

func TestAlertsUseRegisteredMetrics(t *testing.T) {
	reg := registeredMetrics(t)
	var rule struct {
		Spec struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Alert string `yaml:"alert"`
					Expr  string `yaml:"expr"`
					For   string `yaml:"for"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	loadManifests(t).one(t, "PrometheusRule", "", &rule)
	alerts := map[string]string{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("group %s: a rule without alert name or expr", g.Name)
				continue
			}
			alerts[r.Alert] = r.Expr
			checkExpr(t, "alert "+r.Alert, r.Expr, reg, outsideMetrics)
		}
	}
	// The alerts an operator was promised, by the metric each watches.
	for _, must := range []string{"orderflow_queue_latency_seconds", `orderflow_queue_size{state="archived"}`,
		"orderflow_breaker_state", `orderflow_order_transitions_total{to="expired"}`, "kube_pod_status_ready"} {
		if !slices.ContainsFunc(slices.Collect(maps.Values(alerts)), func(e string) bool { return strings.Contains(e, must) }) {
			t.Errorf("no alert watches %s", must)
		}
	}
}

func TestDashboardUsesRegisteredMetrics(t *testing.T) {
	reg := registeredMetrics(t)
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(readFile(t, dashboardFile)), &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("%s: uid and title must be set", dashboardFile)
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range checkExpr(t, "panel "+p.Title, tg.Expr, reg, nil) {
				used[n] = true
			}
		}
	}
	for _, must := range []string{"orderflow_queue_size", "orderflow_queue_latency_seconds", "orderflow_tasks_processed_total",
		"orderflow_provider_requests_total", "orderflow_provider_request_duration_seconds_bucket", "orderflow_breaker_state",
		"orderflow_order_transitions_total", "orderflow_orders"} {
		if !used[must] {
			t.Errorf("the dashboard has no panel on %s", must)
		}
	}
}

// family is a registered metric family: its series names and label names.
type family struct {
	series map[string]bool
	labels map[string]bool
}

// registeredMetrics gathers metrics.New()'s registry after touching every
// collector, so that each family has a series: name -> its labels.
func registeredMetrics(tb testing.TB) map[string]family {
	tb.Helper()
	m := metrics.New()
	m.Request(providers.Xportcn, "preview", providers.ClassNone, time.Millisecond)
	m.LimiterWait(providers.Xportcn, time.Millisecond)
	m.Deferred(providers.Xportcn, "rate_limit")
	m.BreakerState(providers.Xportcn, "open")
	m.TaskProcessed(tasks.TypePreview, "ok", time.Millisecond)
	m.OrderTransition(providers.Xportcn, "received", "previewed")
	m.StepRepaired(providers.Xportcn, tasks.TypePoll)
	m.OrdersInState(func() map[string]map[string]int64 {
		return map[string]map[string]int64{providers.Xportcn: {"created": 1}}
	})
	// The queue collector reports queues that exist: make one.
	srv := redistest.Mini(tb)
	opt := asynq.RedisClientOpt{Addr: srv.Addr}
	client := asynq.NewClient(opt)
	tb.Cleanup(func() { _ = client.Close() })
	if _, err := client.Enqueue(asynq.NewTask(tasks.TypePoll, nil), asynq.Queue(tasks.Queue(providers.Xportcn, tasks.KindPoll))); err != nil {
		tb.Fatal(err)
	}
	insp := asynq.NewInspector(opt)
	tb.Cleanup(func() { _ = insp.Close() })
	m.WatchQueues(insp)

	mfs, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]family{}
	for _, mf := range mfs {
		f := family{series: map[string]bool{mf.GetName(): true}, labels: map[string]bool{}}
		switch mf.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				f.series[mf.GetName()+s] = true
			}
			f.labels["le"] = true
		case "SUMMARY":
			for _, s := range []string{"_sum", "_count"} {
				f.series[mf.GetName()+s] = true
			}
			f.labels["quantile"] = true
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				f.labels[l.GetName()] = true
			}
		}
		for s := range f.series {
			out[s] = f
		}
	}
	for _, must := range []string{"orderflow_queue_size", "orderflow_queue_latency_seconds", "orderflow_orders", "orderflow_breaker_state"} {
		if _, ok := out[must]; !ok {
			tb.Fatalf("gathering metrics.New() did not yield %s: touch its collector here", must)
		}
	}
	return out
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promSelector = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}`)
	promMatcher  = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are removed, that are neither functions, keywords nor numbers.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("0123456789.", rune(s[loc[0]-1])) {
			continue // exponent or unit of a number: 1e3, 5m
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function
		}
		if promKeywords[strings.ToLower(name)] {
			continue
		}
		out = append(out, name)
	}
	return out
}

// checkExpr reports names in expr that reg does not register (nor outside
// allows) and label matchers on labels the family does not have; it returns
// the names found.
func checkExpr(tb testing.TB, what, expr string, reg map[string]family, outside map[string]bool) []string {
	tb.Helper()
	names := metricNames(expr)
	if len(names) == 0 {
		tb.Errorf("%s: no metric in %q", what, expr)
	}
	for _, n := range names {
		if _, ok := reg[n]; !ok && !outside[n] {
			tb.Errorf("%s: metric %s is not registered by metrics.New() (expr %q)", what, n, expr)
		}
	}
	for _, sel := range promSelector.FindAllStringSubmatch(promString.ReplaceAllStringFunc(expr, func(s string) string {
		return strings.NewReplacer("{", "", "}", "").Replace(s)
	}), -1) {
		f, ok := reg[sel[1]]
		if !ok {
			continue
		}
		for _, lm := range promMatcher.FindAllStringSubmatch(sel[2], -1) {
			if !f.labels[lm[1]] && !slices.Contains(targetLabels, lm[1]) {
				tb.Errorf("%s: %s has no label %q (expr %q)", what, sel[1], lm[1], expr)
			}
		}
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`max by (queue) (orderflow_queue_latency_seconds) > 300`, []string{"orderflow_queue_latency_seconds"}},
		{`sum(increase(a_total{to="expired", x=~"b{1}"}[1h])) > 1e3`, []string{"a_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{ns="$namespace"}[$__rate_interval])))`, []string{"h_bucket"}},
		{`absent(up{job="orderflow"} == 1) or vector(0) and on (pod) b offset 5m`, []string{"up", "b"}},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
			}
		})
	}
}

func readFile(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func splitHostPort(addr string) (string, int, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("no port")
	}
	p, err := strconv.Atoi(addr[i+1:])
	return strings.Trim(addr[:i], "[]"), p, err
}

func isTrue(b *bool) bool { return b != nil && *b }

// subset reports whether every label of sub is in set with the same value.
func subset(sub, set map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if set[k] != v {
			return false
		}
	}
	return true
}

func sameLabels(a, b map[string]string) bool { return subset(a, b) && subset(b, a) }
