#!/usr/bin/env bash
# Builds the pinned real components the tests run against, from the Go module proxy only, into the
# git-ignored .tools/bin. Each tool is rebuilt only when its pinned version changes (a stamp file
# beside it), so a second run takes seconds. Builds run one at a time: each saturates both cores.
#
# Usage: scripts/install-tools.sh [TOOL...]     (default: all; TOOL in etcd kube helm promtool envoy-gateway)
# Prints one "TIME <tool> <seconds>s" line per build to stderr and appends it to .tools/timings.txt.
set -euo pipefail

ETCD_VERSION=v3.6.16
K8S_VERSION=v1.34.4
HELM_VERSION=v3.19.0
PROMETHEUS_VERSION=v0.307.3        # the Go module version of Prometheus 3.7.3 (promtool)
ENVOY_GATEWAY_VERSION=v1.6.0

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
BUILD="$TOOLS/build"
mkdir -p "$BIN" "$BUILD"
export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0
command -v go >/dev/null || { echo "install-tools.sh: go is required" >&2; exit 1; }

fresh() { [[ -x "$BIN/$1" && -f "$BIN/$1.version" && "$(cat "$BIN/$1.version")" == "$2" ]]; }
stamp() { echo "$2" > "$BIN/$1.version"; }
timed() {
  local what=$1; shift
  local t0; t0=$(date +%s)
  "$@" >&2
  echo "TIME $what $(( $(date +%s) - t0 ))s" | tee -a "$TOOLS/timings.txt" >&2
}
# A throwaway module under .tools/build/NAME whose go.mod the caller writes.
module_dir() { rm -rf "${BUILD:?}/$1"; mkdir -p "$BUILD/$1"; echo "$BUILD/$1"; }

install_etcd() {
  fresh etcd "$ETCD_VERSION" && return
  local d; d=$(module_dir etcd)
  # go.etcd.io/etcd/server/v3 carries replace lines, so it cannot be go-installed: require it instead.
  (cd "$d" && printf 'module bbrtools/etcd\n\ngo 1.24\n' > go.mod \
    && printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go \
    && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 && go mod tidy >&2 \
    && timed etcd go build -trimpath -ldflags='-s -w' -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd "$ETCD_VERSION"
}

install_kube() {
  fresh kube-apiserver "$K8S_VERSION" && fresh kubectl "$K8S_VERSION" && return
  local d; d=$(module_dir kubernetes)
  local gomod staging minor ld
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging="v0.${K8S_VERSION#v1.}"
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  # k8s.io/kubernetes replaces each k8s.io/* staging module with ./staging/...; point each at its
  # published v0.N tag instead, which is the same code.
  {
    echo "module bbrtools/kubernetes"
    echo
    awk '$1=="go"{print; exit}' "$gomod"
    grep '^godebug' "$gomod" || true
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    awk -v tag="$staging" '/=> \.\/staging/ {print "\t" $1 " => " $1 " " tag}' "$gomod"
    echo ")"
  } > "$d/go.mod"
  printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' > "$d/tools.go"
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  (cd "$d" && go mod tidy >&2 \
    && timed kube-apiserver go build -trimpath -ldflags="$ld" -o "$BIN/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
    && timed kubectl go build -trimpath -ldflags="$ld" -o "$BIN/kubectl" k8s.io/kubernetes/cmd/kubectl)
  stamp kube-apiserver "$K8S_VERSION"
  stamp kubectl "$K8S_VERSION"
}

install_helm() {
  fresh helm "$HELM_VERSION" && return
  (cd "$(module_dir helm)" && GOBIN="$BIN" timed helm go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  stamp helm "$HELM_VERSION"
}

install_promtool() {
  fresh promtool "$PROMETHEUS_VERSION" && return
  local d; d=$(module_dir promtool)
  (cd "$d" && printf 'module bbrtools/promtool\n\ngo 1.24\n' > go.mod \
    && printf 'package tools\n\nimport _ "github.com/prometheus/prometheus/cmd/promtool"\n' > tools.go \
    && go get "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" >&2 && go mod tidy >&2 \
    && timed promtool go build -trimpath -ldflags='-s -w' -o "$BIN/promtool" github.com/prometheus/prometheus/cmd/promtool)
  stamp promtool "$PROMETHEUS_VERSION"
}

install_envoy_gateway() {
  fresh envoy-gateway "$ENVOY_GATEWAY_VERSION" && return
  local d src; d=$(module_dir envoy-gateway)
  src=$(go mod download -json "github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  # Its go.mod pins a dependency by a pseudo-version the checksum database does not know, so
  # `go install` refuses it; requiring it from a module that carries Envoy Gateway's own go.sum works.
  {
    echo "module bbrtools/envoygateway"
    echo
    awk '$1=="go"{print; exit}' "$src/go.mod"
    echo "require github.com/envoyproxy/gateway $ENVOY_GATEWAY_VERSION"
    sed -n '/^replace/,$p' "$src/go.mod"
  } > "$d/go.mod"
  cp "$src/go.sum" "$d/go.sum"
  chmod u+w "$d/go.sum"
  printf 'package tools\n\nimport _ "github.com/envoyproxy/gateway/cmd/envoy-gateway"\n' > "$d/tools.go"
  (cd "$d" && GONOSUMDB=* GOFLAGS="$GOFLAGS" go mod tidy >&2 \
    && timed envoy-gateway go build -trimpath -ldflags='-s -w' -o "$BIN/envoy-gateway" github.com/envoyproxy/gateway/cmd/envoy-gateway)
  stamp envoy-gateway "$ENVOY_GATEWAY_VERSION"
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(etcd kube helm promtool envoy-gateway)
for t in "${tools[@]}"; do
  case "$t" in
    etcd) install_etcd ;;
    kube) install_kube ;;
    helm) install_helm ;;
    promtool) install_promtool ;;
    envoy-gateway) install_envoy_gateway ;;
    *) echo "install-tools.sh: unknown tool $t" >&2; exit 2 ;;
  esac
done
echo "$BIN"
