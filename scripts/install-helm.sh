#!/usr/bin/env bash
# Installs a pinned Helm v3 into the project-local .tools/bin (git-ignored) with `go install`.
# Idempotent: does nothing if that exact version is already there. Prints the helm path.
# Usage: scripts/install-helm.sh            (HELM_VERSION=v3.19.0 by default)
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.19.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${ROOT}/.tools/bin"
HELM="${BIN_DIR}/helm"

if [[ -x "${HELM}" ]] && "${HELM}" version --template '{{.Version}}' 2>/dev/null | grep -qx "${HELM_VERSION}"; then
  echo "${HELM}"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "install-helm.sh: 'go' is required (Go >= 1.24)" >&2; exit 1; }
mkdir -p "${BIN_DIR}"
echo "install-helm.sh: building helm ${HELM_VERSION} into ${BIN_DIR} (compiles; a few minutes)..." >&2
start=$(date +%s)
# Run outside any module so the project's files do not influence resolution.
# The linker flag stamps the version so `helm version` reports it (go install alone reports v3.x-dev/unknown).
(cd "$(mktemp -d)" && \
  GOBIN="${BIN_DIR}" GOFLAGS=-mod=mod CGO_ENABLED=0 go install \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
echo "install-helm.sh: done in $(( $(date +%s) - start ))s" >&2
"${HELM}" version --template '{{.Version}}{{"\n"}}' >&2
echo "${HELM}"
