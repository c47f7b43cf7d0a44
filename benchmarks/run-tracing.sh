#!/usr/bin/env bash
# What --tracing costs: two router JVMs launched the same way, --tracing=false and --tracing=true
# with every request sampled (always_on) and exported over OTLP/gRPC to a real receiver in the
# load client's JVM, under the ext_proc load of run-extproc.sh (1 KiB bodies, both modes, 3 rounds
# of 2.5 s windows, order flipped each round). About 1 minute on 2 cores. Extra arguments go to
# TracingBench, e.g. `--sizes 1Ki,256Ki --rounds 5`.
set -euo pipefail
cd "$(dirname "$0")/.."
results=benchmarks/results
jar=benchmarks/target/benchmarks.jar
mkdir -p "$results"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then  # run-all.sh builds once
  mvn -B -q -ntp -DskipTests package -pl benchmarks -am
fi
java -Xms1g -Xmx1g -cp "$jar" dev.bbr.benchmarks.load.TracingBench \
  --router-jar bbr-server/target/bbr-server.jar --allowlist-dir deploy/examples/allowlist \
  "$@" 2> "$results/tracing-progress.txt" | tee "$results/tracing.md"
