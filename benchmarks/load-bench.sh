#!/usr/bin/env bash
# Runs one load benchmark of dev.bbr.benchmarks.load against the router jar and the example
# allowlist, the way every run-*.sh of them does: `load-bench.sh CLASS NAME [ARGS...]` builds
# first (unless SKIP_BUILD=1, as run-all.sh sets), writes progress to results/NAME-progress.txt
# and the Markdown to results/NAME.md. ARGS go to CLASS. JAVA picks the java that runs the bench
# and the servers it starts (default: java on the PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
class=$1 name=$2
shift 2
results=benchmarks/results
mkdir -p "$results"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  mvn -B -q -ntp -DskipTests package -pl benchmarks -am
fi
"${JAVA:-java}" -Xms1g -Xmx1g -cp benchmarks/target/benchmarks.jar "dev.bbr.benchmarks.load.$class" \
  --router-jar bbr-server/target/bbr-server.jar --allowlist-dir deploy/examples/allowlist \
  "$@" 2> "$results/$name-progress.txt" | tee "$results/$name.md"
