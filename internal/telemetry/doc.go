// Package telemetry holds the tracker's observability: the metric definitions
// (a single table, also rendered into the README), the typed [Metrics] the
// rest of the tracker records through, and [Setup], which builds the
// OpenTelemetry logger, meter and tracer providers for a telemetry [Mode] plus
// an always-on Prometheus /metrics handler.
//
// Nothing here touches OpenTelemetry globals: callers pass the providers on.
package telemetry
