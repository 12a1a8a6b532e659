// Package deploy holds orderflow's deployment files: the image
// (Dockerfile), the Kustomize base (kubernetes/base: Deployment, Service,
// PodDisruptionBudget, KEDA ScaledObject, ServiceMonitor, PrometheusRule)
// the Grafana dashboard (grafana/orderflow.json) and promtool's unit tests
// of the alerts (prometheus/rules_test.yml). It has no Go code:
// manifests_test.go checks the files against the worker they deploy
// (probe paths, ports, drain timeouts, secrets, alert metric names), and
// tools_test.go runs the real tools on them: `promtool check rules` and
// `promtool test rules` (Debian package prometheus), and kustomize's own
// build of the base, each built-in object validated against the Kubernetes
// OpenAPI schema kustomize embeds.
package deploy
