#!/usr/bin/env bash
# The seed's Pattern 2 on this machine: Envoy on :8080 in front of the router (allowlist from
# deploy/examples/allowlist), two stub model backends behind it (qwen-pool :8001, phi-pool :8002).
# Prints the curl commands that show each model routed to its own backend. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOGS=$(mktemp -d /tmp/bbr-local.XXXXXX)
ENVOY=$(scripts/envoy-path.sh)

if [[ ! -f bbr-server/target/bbr-server.jar ]]; then
  echo "building bbr-server.jar (first run only)..."
  mvn -B -q -DskipTests install
fi

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

STUB=bbr-server/src/test/java/dev/bbr/server/testing/StubModelBackend.java
java "$STUB" --port 8001 --pool qwen-pool >"$LOGS/qwen-pool.log" 2>&1 & pids+=($!)
java "$STUB" --port 8002 --pool phi-pool >"$LOGS/phi-pool.log" 2>&1 & pids+=($!)
java -jar bbr-server/target/bbr-server.jar --secure-serving=false --streaming --log-format=text \
  --allowlist-dir deploy/examples/allowlist >"$LOGS/router.log" 2>&1 & pids+=($!)
"$ENVOY" -c deploy/examples/local/envoy.yaml --concurrency 1 -l warning >"$LOGS/envoy.log" 2>&1 & pids+=($!)

wait_for() { # url, what
  for _ in $(seq 1 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "$2 did not come up; logs in $LOGS" >&2; exit 1
}
wait_for http://127.0.0.1:8001/health "qwen-pool stub"
wait_for http://127.0.0.1:8002/health "phi-pool stub"
wait_for http://127.0.0.1:9090/metrics "router"
wait_for http://127.0.0.1:9901/ready "envoy"
# Envoy's gRPC health check marks the router healthy within a couple of seconds.
for _ in $(seq 1 50); do
  curl -fs http://127.0.0.1:9901/clusters | grep -q 'bbr::127.0.0.1:9004::health_flags::healthy' && break
  sleep 0.2
done

show() { echo "\$ $1"; bash -c "$1"; echo; echo; }
echo
echo "Router, Envoy and two stub pools are up (logs: $LOGS). Try:"
echo
show "curl -s localhost:8080/v1/completions -H 'content-type: application/json' -d '{\"model\": \"Qwen/Qwen2.5-3B-Instruct\", \"prompt\": \"What is machine learning?\", \"max_tokens\": 50}'"
show "curl -s localhost:8080/v1/completions -H 'content-type: application/json' -d '{\"model\": \"microsoft/Phi-3-mini-4k-instruct\", \"prompt\": \"What is machine learning?\", \"max_tokens\": 50}'"
show "curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' -d '{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"model\": \"qwen-food-review\"}'"
show "curl -s -w ' (HTTP %{http_code})' localhost:8080/v1/completions -H 'content-type: application/json' -d '{\"model\": \"gpt-4o\", \"prompt\": \"hi\"}'"
show "curl -s -w ' (HTTP %{http_code})' localhost:8080/v1/completions -H 'content-type: application/json' -d '{\"model\": '"
show "curl -s localhost:9090/metrics | grep -E '^bbr_(requests|routed)_total' | grep -v ' 0.0$'"
if [[ "${BBR_LOCAL_ONCE:-}" == "1" ]]; then
  exit 0
fi
echo "Press Ctrl-C to stop."
wait
