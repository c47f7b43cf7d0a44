#!/usr/bin/env bash
# Benchmarks the allowlist at 10,000 adapters over 100 base models (and a 10x10 reference):
# relist and rebuild time, lookup throughput next to a plain HashMap measured in the same run,
# allocation per operation, and retained heap. Prints a Markdown summary for docs/benchmarks.md.
#
# Takes a little over 2 minutes on 2 cores (134 s measured, build included). Results (JMH JSON
# and text, heap table, summary) go to benchmarks/results/, which git ignores. Extra arguments go
# to JMH, e.g. `-p shape=100x100`.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
results=benchmarks/results
jar=benchmarks/target/benchmarks.jar
mkdir -p "$results"

echo "== build"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then  # run-all.sh builds once
  mvn -B -q -ntp -DskipTests package -pl benchmarks -am
fi

echo "== machine"
{
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "java: $(java -version 2>&1 | head -2 | tail -1)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results/allowlist-machine.txt"

echo "== JMH (forks its own JVM with -Xms1g -Xmx1g)"
# Modest settings: 1 fork, 3 x 1 s warmup, 5 x 1 s measurement, per benchmark and shape.
java -jar "$jar" AllowlistBenchmark -f 1 -wi 3 -w 1s -i 5 -r 1s -prof gc \
  -rf json -rff "$results/allowlist-jmh.json" "$@" | tee "$results/allowlist-jmh.txt"

echo "== heap"
java -Xms1g -Xmx1g -cp "$jar" dev.bbr.benchmarks.AllowlistHeap | tee "$results/allowlist-heap.txt"

echo "== summary"
{
  cat "$results/allowlist-machine.txt"
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  java -cp "$jar" dev.bbr.benchmarks.AllowlistReport "$results/allowlist-jmh.json"
  echo
  echo "### retained heap"
  echo
  cat "$results/allowlist-heap.txt"
  echo
  echo "total: $(( $(date +%s) - start )) s"
} | tee "$results/allowlist-summary.md"
