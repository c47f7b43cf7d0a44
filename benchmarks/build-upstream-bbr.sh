#!/usr/bin/env bash
# Builds the upstream Go BBR baseline (benchmarks/upstream-bbr: upstream's pkg/bbr/handlers at the
# version pinned in its go.mod) into .tools/bin/upstream-bbr. Cached: rebuilt only when the
# sources, go.mod/go.sum or the Go version change. Prints the binary's path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
src="$here/upstream-bbr"
go="${GO:-/usr/local/go/bin/go}"
out="${UPSTREAM_BBR_BIN:-$root/.tools/bin/upstream-bbr}"
mkdir -p "$(dirname "$out")"
upstream="$(grep -E '^\s*sigs.k8s.io/gateway-api-inference-extension ' "$src/go.mod" | awk '{print $2}' | head -1)"
[ -n "$upstream" ] || upstream="$(grep -o 'gateway-api-inference-extension v[^ ]*' "$src/go.mod" | awk '{print $2}' | head -1)"
stamp="$(cat "$src"/*.go "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)-$("$go" env GOVERSION)"
version="gateway-api-inference-extension@$upstream+$stamp"
if [ -x "$out" ] && [ "$("$out" -version 2>/dev/null)" = "$version" ]; then
  echo "$out"; exit 0
fi
(cd "$src" && nice "$go" build -trimpath -mod=readonly -ldflags "-s -w -X main.version=$version" -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "$out"
