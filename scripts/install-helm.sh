#!/usr/bin/env bash
# Installs the pinned helm into .tools/bin (see scripts/install-tools.sh) and prints its path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/install-tools.sh" helm >/dev/null
echo "$ROOT/.tools/bin/helm"
