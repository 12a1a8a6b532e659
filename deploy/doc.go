// Package deploy holds orderflow's deployment files: the image
// (Dockerfile), the Kustomize base (kubernetes/base: Deployment, Service,
// PodDisruptionBudget, KEDA ScaledObject, ServiceMonitor, PrometheusRule)
// and the Grafana dashboard (grafana/orderflow.json). It has no Go code:
// manifests_test.go checks the files against the worker they deploy
// (probe paths, ports, drain timeouts, secrets, alert metric names).
package deploy
