#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for the tests: etcd + kube-apiserver with RBAC, its
# own CA, client certificates and a service-account signing key (TokenRequest works). No kubelet:
# Pods stay Pending. Binaries come from scripts/install-tools.sh (.tools/bin).
#
# Usage: scripts/kube.sh up STATE_DIR             start both; writes STATE_DIR/kubeconfig and STATE_DIR/env
#        scripts/kube.sh down STATE_DIR           stop both
#        scripts/kube.sh stop-apiserver STATE_DIR / start-apiserver STATE_DIR
#        scripts/kube.sh compact STATE_DIR        compact etcd at its current revision (old watches get 410 Gone)
# Ports: API_PORT, ETCD_PORT, ETCD_PEER_PORT (free ones are picked when unset, then kept in STATE_DIR/env).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${TOOLS_BIN:-$ROOT/.tools/bin}"
cmd=${1:?usage: kube.sh up|down|stop-apiserver|start-apiserver|compact STATE_DIR}
STATE=${2:?STATE_DIR missing}
mkdir -p "$STATE/pki" "$STATE/logs"
STATE=$(cd "$STATE" && pwd)
PKI=$STATE/pki

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if [[ -f $STATE/env ]]; then
  # shellcheck disable=SC1091
  source "$STATE/env"
fi
API_PORT=${API_PORT:-$(free_port)}
ETCD_PORT=${ETCD_PORT:-$(free_port)}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-$(free_port)}
printf 'API_PORT=%s\nETCD_PORT=%s\nETCD_PEER_PORT=%s\n' "$API_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" > "$STATE/env"

alive() { [[ -f $STATE/$1.pid ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

stop() { # name
  alive "$1" || { rm -f "$STATE/$1.pid"; return 0; }
  local pid; pid=$(cat "$STATE/$1.pid")
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$STATE/$1.pid"
}

certs() {
  [[ -f $PKI/ca.crt ]] && return
  (
    cd "$PKI"
    sign() { # name subject extfile
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -extfile "$3" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr"
    }
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 365 -subj /CN=bbr-test-ca 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' > server.ext
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > client.ext
    sign apiserver /CN=kube-apiserver server.ext
    sign admin "/CN=bbr-test-admin/O=system:masters" client.ext
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

kubeconfig() {
  cat > "$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bbr-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/admin.crt")
    client-key-data: $(base64 -w0 < "$PKI/admin.key")
contexts:
- name: bbr-test
  context: {cluster: bbr-test, user: admin, namespace: default}
current-context: bbr-test
EOF
  chmod 600 "$STATE/kubeconfig"
}

wait_for() { # what url seconds [curl args...]
  local what=$1 url=$2 secs=$3; shift 3
  for _ in $(seq 1 $((secs * 10))); do
    curl -sf "$@" "$url" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "kube.sh: $what not ready after ${secs}s; last log lines:" >&2
  tail -20 "$STATE/logs/$what.log" >&2
  return 1
}

start_etcd() {
  alive etcd && return
  "$BIN/etcd" --name bbr-test --data-dir "$STATE/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "bbr-test=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn \
    >> "$STATE/logs/etcd.log" 2>&1 &
  echo $! > "$STATE/etcd.pid"
  wait_for etcd "http://127.0.0.1:$ETCD_PORT/health" 30
}

start_apiserver() {
  alive kube-apiserver && return
  "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --endpoint-reconciler-type=none --service-cluster-ip-range=10.96.0.0/16 \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=Node,RBAC --allow-privileged=true --profiling=false \
    --v=1 >> "$STATE/logs/kube-apiserver.log" 2>&1 &
  echo $! > "$STATE/kube-apiserver.pid"
  local auth=(--cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
  wait_for kube-apiserver "https://127.0.0.1:$API_PORT/readyz" 90 "${auth[@]}"
  # The bootstrap RBAC roles and the default namespace exist shortly after readyz.
  wait_for kube-apiserver "https://127.0.0.1:$API_PORT/api/v1/namespaces/default" 30 "${auth[@]}"
}

case "$cmd" in
  up)
    for b in etcd kube-apiserver kubectl; do
      [[ -x $BIN/$b ]] || { echo "kube.sh: $BIN/$b missing: run scripts/install-tools.sh" >&2; exit 1; }
    done
    certs
    kubeconfig
    start_etcd
    start_apiserver
    echo "$STATE/kubeconfig"
    ;;
  down) stop kube-apiserver; stop etcd ;;
  stop-apiserver) stop kube-apiserver ;;
  start-apiserver) start_apiserver ;;
  compact)
    # etcd's JSON gateway: read the current revision, then compact everything before it.
    rev=$(curl -sf -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/range" -d '{"key":"AA==","limit":1}' \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
    curl -sf -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null
    echo "$rev"
    ;;
  *) echo "kube.sh: unknown command $cmd" >&2; exit 2 ;;
esac
