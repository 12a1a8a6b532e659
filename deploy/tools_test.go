package deploy_test

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// rulesTestFile holds promtool's unit tests of the alerts.
const rulesTestFile = "prometheus/rules_test.yml"

// toolRequired: a missing external tool fails instead of skipping (CI).
func toolRequired() bool { return os.Getenv("REQUIRE_REDIS") == "1" || os.Getenv("CI") == "true" }

// lookTool finds bin on PATH, or skips (fails when toolRequired) naming
// the Debian package that has it.
func lookTool(tb testing.TB, bin, pkg string) string {
	tb.Helper()
	p, err := exec.LookPath(bin)
	switch {
	case err == nil:
		return p
	case toolRequired():
		tb.Fatalf("REQUIRE_REDIS=1 or CI=true but %s is not installed (Debian package %s)", bin, pkg)
	default:
		tb.Skipf("%s not installed (Debian package %s; set REQUIRE_REDIS=1 to make this a failure)", bin, pkg)
	}
	return ""
}

// TestPromtoolRules: the PrometheusRule's groups pass `promtool check
// rules` (PromQL parses, templates expand, no duplicate names), and
// `promtool test rules` runs prometheus/rules_test.yml on them: the
// breaker-open and needs-review alerts fire on the series they are for,
// with their labels and annotations, and not on the others.
func TestPromtoolRules(t *testing.T) {
	promtool := lookTool(t, "promtool", "prometheus")
	var rule struct {
		Spec struct {
			Groups []map[string]any `yaml:"groups"`
		} `yaml:"spec"`
	}
	loadManifests(t).one(t, "PrometheusRule", "", &rule)
	if len(rule.Spec.Groups) == 0 {
		t.Fatal("the PrometheusRule has no groups")
	}
	b, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "orderflow-rules.yml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yml"), []byte(readFile(t, rulesTestFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Log(strings.TrimSpace(run("check", "rules", "orderflow-rules.yml")))
	t.Log(strings.TrimSpace(run("test", "rules", "rules_test.yml")))

	// The unit tests cover the alerts they were written for.
	tests := readFile(t, rulesTestFile)
	for _, alert := range []string{"OrderflowBreakerOpen", "OrderflowOrdersNeedReview"} {
		if !strings.Contains(tests, "alertname: "+alert+"\n") {
			t.Errorf("%s has no test of %s", rulesTestFile, alert)
		}
	}
}

// TestKustomizeBuild builds the base with kustomize's own library (what
// `kustomize build` and `kubectl apply -k` run): it builds, yields every
// resource the files hold (and not the example Secret), applies the image
// override, and each object of a built-in kind is valid against the
// Kubernetes OpenAPI schema kustomize embeds, unknown fields included.
func TestKustomizeBuild(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), baseDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", baseDir, err)
	}
	var got, want []string
	for _, r := range rm.Resources() {
		got = append(got, r.GetKind()+"/"+r.GetName())
	}
	for _, d := range loadManifests(t).docs {
		if d.kind != "Kustomization" && filepath.Base(d.file) != exampleSecret {
			want = append(want, d.kind+"/"+d.name)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("kustomize build yields\n  %v\nwant the resources of the files\n  %v", got, want)
	}
	checkImage(t, rm)

	checked, unchecked := map[string]bool{}, map[string]bool{}
	for _, r := range rm.Resources() {
		tm := kyaml.TypeMeta{APIVersion: r.GetApiVersion(), Kind: r.GetKind()}
		obj, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("%s %s (%s)", r.GetKind(), r.GetName(), r.GetApiVersion())
		rs := openapi.SchemaForResourceType(tm)
		if rs == nil {
			unchecked[r.GetKind()+" ("+r.GetApiVersion()+")"] = true
			continue
		}
		checked[r.GetKind()] = true
		for _, e := range validateObject(rs.Schema, obj) {
			t.Errorf("%s: %s", what, e)
		}
	}
	// The CRDs' schemas (KEDA, the Prometheus Operator) are not embedded:
	// their fields are checked by the tests of manifests_test.go only.
	t.Logf("checked against the Kubernetes %s OpenAPI schema: %v; no schema here for %v",
		openapi.GetSchemaVersion(), slices.Sorted(maps.Keys(checked)), slices.Sorted(maps.Keys(unchecked)))
	for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "ServiceAccount"} {
		if !checked[kind] {
			t.Errorf("no %s was checked against the schema", kind)
		}
	}
}

// checkImage: the kustomization's images override reaches the worker.
func checkImage(tb testing.TB, rm resmap.ResMap) {
	tb.Helper()
	var k struct {
		Images []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	if err := yaml.Unmarshal([]byte(readFile(tb, filepath.Join(baseDir, "kustomization.yaml"))), &k); err != nil {
		tb.Fatal(err)
	}
	if len(k.Images) != 1 {
		tb.Fatalf("kustomization.yaml: want one images entry, found %d", len(k.Images))
	}
	for _, r := range rm.Resources() {
		if r.GetKind() != "Deployment" {
			continue
		}
		var d deployment
		y, err := r.AsYAML()
		if err != nil {
			tb.Fatal(err)
		}
		if err := yaml.Unmarshal(y, &d); err != nil {
			tb.Fatal(err)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if want := k.Images[0].NewName + ":" + k.Images[0].NewTag; c.Name == workerName && c.Image != want {
				tb.Errorf("built Deployment %s: container %s image %q, want %q (the images override)", d.Metadata.Name, c.Name, c.Image, want)
			}
		}
	}
}

// schemaRoot is kustomize's embedded Kubernetes schema with IntOrString
// as the OpenAPI v3 form says it is (an integer or a string): the v2
// definition says only "string", which an integer port would fail.
func schemaRoot() *spec.Schema {
	root := *openapi.Schema()
	defs := make(spec.Definitions, len(root.Definitions))
	for k, v := range root.Definitions {
		defs[k] = v
	}
	const intOrString = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
	if _, ok := defs[intOrString]; ok {
		defs[intOrString] = spec.Schema{SchemaProps: spec.SchemaProps{AnyOf: []spec.Schema{
			{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"integer"}}},
			{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"string"}}},
		}}}
	}
	root.Definitions = defs
	return &root
}

// validateObject checks obj against s: types, required fields and enums
// (the OpenAPI validator, on s with its references expanded), and fields
// the schema does not have (the Kubernetes definitions do not forbid them,
// so a misspelt field would pass and be dropped by the API server).
func validateObject(s *spec.Schema, obj map[string]any) []string {
	full, err := expand(*s, schemaRoot(), 0)
	if err != nil {
		return []string{err.Error()}
	}
	var errs []string
	if res := validate.NewSchemaValidator(&full, nil, "", strfmt.Default).Validate(obj); res != nil {
		for _, e := range res.Errors {
			errs = append(errs, e.Error())
		}
	}
	return append(errs, unknownFields("", obj, &full)...)
}

// expand returns s with every reference replaced by its definition in
// root (the validator takes no references).
func expand(s spec.Schema, root *spec.Schema, depth int) (spec.Schema, error) {
	if depth > 50 {
		return s, fmt.Errorf("schema nested deeper than 50 levels: a recursive definition?")
	}
	if s.Ref.String() != "" {
		r, err := openapi.Resolve(&s.Ref, root)
		if err != nil {
			return s, fmt.Errorf("schema reference %s: %w", s.Ref.String(), err)
		}
		s = *r
	}
	var err error
	one := func(in *spec.Schema) *spec.Schema {
		if in == nil || err != nil {
			return in
		}
		var out spec.Schema
		out, err = expand(*in, root, depth+1)
		return &out
	}
	if s.Properties != nil {
		props := make(map[string]spec.Schema, len(s.Properties))
		for k, v := range s.Properties {
			props[k] = *one(&v)
		}
		s.Properties = props
	}
	if s.Items != nil && s.Items.Schema != nil {
		s.Items = &spec.SchemaOrArray{Schema: one(s.Items.Schema)}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		s.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: one(s.AdditionalProperties.Schema)}
	}
	for _, list := range []*[]spec.Schema{&s.AnyOf, &s.AllOf, &s.OneOf} {
		if *list != nil {
			out := make([]spec.Schema, len(*list))
			for i := range *list {
				out[i] = *one(&(*list)[i])
			}
			*list = out
		}
	}
	return s, err
}

// unknownFields lists the paths in v that the expanded schema s has no
// property for.
func unknownFields(path string, v any, s *spec.Schema) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, fv := range v {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if ps, ok := s.Properties[k]; ok {
				out = append(out, unknownFields(p, fv, &ps)...)
				continue
			}
			switch {
			case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
				out = append(out, unknownFields(p, fv, s.AdditionalProperties.Schema)...)
			case s.AdditionalProperties != nil && s.AdditionalProperties.Allows:
			case len(s.Properties) > 0:
				out = append(out, p+": unknown field")
			}
		}
	case []any:
		if s.Items != nil && s.Items.Schema != nil {
			for i, iv := range v {
				out = append(out, unknownFields(fmt.Sprintf("%s[%d]", path, i), iv, s.Items.Schema)...)
			}
		}
	}
	sort.Strings(out)
	return out
}
