#!/usr/bin/env bash
# Benchmarks model extraction, fed in 16 KiB chunks, three ways in the same run: the router's
# byte-level ModelScanner, the previous extraction (Jackson's non-blocking parser to the model,
# then a byte tracker to the end: JacksonStreamingScanner) and a full Jackson tree parse, for chat-
# and completion-shaped bodies of 1 KiB to 8 MiB, model first and last. Prints MB/s, the ratios
# and the allocation per body as Markdown; JMH's raw results are written as JSON
# (benchmarks/results/extraction-jmh.json). About 3 minutes on 2 cores for all parameters.
# Extra arguments go to JMH, e.g. `-p bodyBytes=1048576`.
set -euo pipefail
cd "$(dirname "$0")/.."
results=benchmarks/results
jar=benchmarks/target/benchmarks.jar
mkdir -p "$results"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then  # run-all.sh builds once
  mvn -B -q -ntp -DskipTests package -pl benchmarks -am
fi
java -jar "$jar" ExtractionBenchmark -f 1 -wi 1 -w 1s -i 3 -r 500ms -prof gc \
  -rf json -rff "$results/extraction-jmh.json" "$@" | tee "$results/extraction-jmh.txt"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
java -cp "$jar" dev.bbr.benchmarks.ExtractionReport "$results/extraction-jmh.json" \
  | tee "$results/extraction.md"
