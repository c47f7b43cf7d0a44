#!/usr/bin/env bash
# The router's heap and RSS with 64 concurrent FULL_DUPLEX_STREAMED streams of 8 MiB bodies, model
# first and then model last, each phase against a fresh router JVM (-Xmx512m,
# --max-buffered-bytes 16Mi, --max-buffered-bytes-total 96Mi), next to the bound expected for each.
# Prints Markdown and writes benchmarks/results/memory.json. About 90 seconds. Extra arguments go to
# MemoryBench, e.g. `--duration 60s --max-buffered-bytes-total 192Mi`.
set -euo pipefail
cd "$(dirname "$0")/.."
results=benchmarks/results
jar=benchmarks/target/benchmarks.jar
mkdir -p "$results"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then  # run-all.sh builds once
  mvn -B -q -ntp -DskipTests package -pl benchmarks -am
fi
java -Xms1g -Xmx1g -cp "$jar" dev.bbr.benchmarks.load.MemoryBench \
  --router-jar bbr-server/target/bbr-server.jar --allowlist-dir deploy/examples/allowlist \
  --out "$results/memory.json" "$@" 2> "$results/memory-progress.txt" | tee "$results/memory.md"
