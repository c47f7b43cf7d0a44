#!/usr/bin/env bash
# Benchmarks model extraction: the router's scan (Jackson non-blocking parser to the model, then
# the structure tracker to the end, 16 KiB chunks) against a full Jackson tree parse of the same
# body in the same run, for chat- and completion-shaped bodies of 1 KiB to 8 MiB, model first and
# last. Prints MB/s, the ratio and the allocation per body as Markdown. About 5 minutes on 2 cores.
# Extra arguments go to JMH, e.g. `-p bodyBytes=1048576`.
set -euo pipefail
cd "$(dirname "$0")/.."
results=benchmarks/results
jar=benchmarks/target/benchmarks.jar
mkdir -p "$results"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then  # run-all.sh builds once
  mvn -B -q -ntp -DskipTests package -pl benchmarks -am
fi
java -jar "$jar" ExtractionBenchmark -f 1 -wi 2 -w 1s -i 3 -r 1s -prof gc \
  -rf json -rff "$results/extraction-jmh.json" "$@" | tee "$results/extraction-jmh.txt"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
java -cp "$jar" dev.bbr.benchmarks.ExtractionReport "$results/extraction-jmh.json"
