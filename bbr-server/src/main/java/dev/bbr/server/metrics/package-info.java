/** Prometheus metrics: the upstream BBR's names first, then what operators need beyond them. */
package dev.bbr.server.metrics;
