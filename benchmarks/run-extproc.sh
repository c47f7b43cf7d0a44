#!/usr/bin/env bash
# The router against a no-op ext_proc server (the floor) under the same Envoy-like ext_proc load:
# both as separate JVMs launched the same way (-Xms512m -Xmx512m, plaintext), a closed-loop gRPC
# client with 32 requests in flight on 2 HTTP/2 connections, bodies of 1 KiB to 1 MiB (model first)
# in FULL_DUPLEX_STREAMED (16 KiB chunks) and BUFFERED. Router and floor alternate in 2.5 s windows (after 1 s each of warm-up),
# 3 rounds; prints medians and the router/floor ratios as Markdown and writes
# benchmarks/results/extproc.json. About 4 minutes on 2 cores. Extra arguments go to ExtProcBench,
# e.g. `--sizes 1Ki --modes FULL_DUPLEX_STREAMED --rounds 5`.
set -euo pipefail
cd "$(dirname "$0")/.."
results=benchmarks/results
jar=benchmarks/target/benchmarks.jar
mkdir -p "$results"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then  # run-all.sh builds once
  mvn -B -q -ntp -DskipTests package -pl benchmarks -am
fi
java -Xms1g -Xmx1g -cp "$jar" dev.bbr.benchmarks.load.ExtProcBench \
  --router-jar bbr-server/target/bbr-server.jar --allowlist-dir deploy/examples/allowlist \
  --out "$results/extproc.json" "$@" 2> "$results/extproc-progress.txt" | tee "$results/extproc.md"
