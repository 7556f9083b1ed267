// Package monitoring defines the Grafana dashboards and the Prometheus alerting and recording rules shipped with
// the tracker, as code over the telemetry package's metric definitions, so a renamed metric or label breaks a
// test rather than a dashboard. The generator in hack/gen-monitoring writes them under config/monitoring and the
// Helm chart's files.
package monitoring
