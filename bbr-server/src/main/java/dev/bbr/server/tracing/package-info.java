/** OpenTelemetry tracing: one span per ext_proc stream, configured by the standard OTEL_* variables. */
package dev.bbr.server.tracing;
