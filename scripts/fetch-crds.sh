#!/usr/bin/env bash
# Copies the published CRDs the chart renders objects of, at pinned versions, from their Go
# modules (the Go module proxy is the registry that serves them here) into .tools/crds/<set>/.
# Idempotent; prints the .tools/crds directory.
#
# Sets: gateway-api-<v> (standard channel, with its ValidatingAdmissionPolicy when it ships one),
# gaie-<v> (InferencePool), envoy-gateway-<v>, istio-<v>, cert-manager-<v>, prometheus-operator-<v>.
# GKE's CRDs are not public: bbr-server's tests carry structural ones of their own.
set -euo pipefail

GATEWAY_API_VERSIONS="v1.4.1 v1.6.3"          # oldest and newest supported
GAIE_VERSIONS="v1.0.2 v1.5.0"                  # InferencePool v1: first GA release and newest
ENVOY_GATEWAY_VERSIONS="v1.5.0 v1.6.0"         # 1.4's EnvoyExtensionPolicy has no FullDuplexStreamed
ISTIO_API_VERSION="v1.28.0"
CERT_MANAGER_VERSION="v1.19.1"
PROMETHEUS_OPERATOR_VERSION="v0.86.1"          # v0.86.2 is not served by the module proxy

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/.tools/crds"
export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=local GOFLAGS=-mod=mod

module_dir() { # module@version -> its directory in the module cache
  (cd "$(mktemp -d)" && go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
}

copy_set() { # set-name module@version subdir-or-file...
  local name=$1 mv=$2; shift 2
  [[ -f $OUT/$name/.done ]] && return
  local dir; dir=$(module_dir "$mv")
  [[ -n $dir ]] || { echo "fetch-crds.sh: cannot download $mv" >&2; exit 1; }
  rm -rf "${OUT:?}/$name"; mkdir -p "$OUT/$name"
  local p
  for p in "$@"; do
    if [[ -d $dir/$p ]]; then
      find "$dir/$p" -maxdepth 1 -name '*.yaml' ! -name 'kustomization.yaml' -exec cp {} "$OUT/$name/" \;
    else
      cp "$dir/$p" "$OUT/$name/"
    fi
  done
  chmod -R u+w "$OUT/$name"
  touch "$OUT/$name/.done"
  echo "fetch-crds.sh: $name: $(ls "$OUT/$name" | wc -l) files from $mv" >&2
}

for v in $GATEWAY_API_VERSIONS; do
  copy_set "gateway-api-$v" "sigs.k8s.io/gateway-api@$v" config/crd/standard
done
for v in $GAIE_VERSIONS; do
  copy_set "gaie-$v" "sigs.k8s.io/gateway-api-inference-extension@$v" \
    config/crd/bases/inference.networking.k8s.io_inferencepools.yaml
done
for v in $ENVOY_GATEWAY_VERSIONS; do
  copy_set "envoy-gateway-$v" "github.com/envoyproxy/gateway@$v" charts/gateway-helm/crds/generated
done
copy_set "istio-$ISTIO_API_VERSION" "istio.io/api@$ISTIO_API_VERSION" kubernetes/customresourcedefinitions.gen.yaml
copy_set "cert-manager-$CERT_MANAGER_VERSION" "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" deploy/crds
copy_set "prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" \
  "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" example/prometheus-operator-crd
echo "$OUT"
