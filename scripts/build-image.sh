#!/usr/bin/env bash
# Builds the router's OCI image without Docker: localhost/body-based-router:<pom version>.
#
#   scripts/build-image.sh              # builds the jar only if bbr-server/target/bbr-server.jar is missing
#   scripts/build-image.sh --build-jar  # always rebuilds the jar first (scripts/test-all.sh does this)
#
# The image is a Debian minbase rootfs (mmdebstrap: libc, ca-certificates, tzdata and Debian's
# essential set) plus a jlink'd Java runtime made from the Temurin 25 JDK under /usr/lib/jvm (the
# JDK the tests also run on) plus the shaded jar. The only network access is Debian's mirror (for
# mmdebstrap and, on first use, apt-get install of podman/buildah/mmdebstrap/runc/uidmap).
# podman/buildah run with vfs storage under .tools/containers and the host quirks below.
#
# Prints the image name, its size and where the OCI archive went. Exports nothing: callers use
#   BBR_IMAGE=localhost/body-based-router:<version>  CONTAINERS_CONF=.tools/containers/containers.conf
#   CONTAINERS_STORAGE_CONF=.tools/containers/storage.conf
# (scripts/test-all.sh sets them for ImageIT).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build_jar=false
for arg in "$@"; do
  case "$arg" in
    --build-jar) build_jar=true ;;
    *) echo "usage: $0 [--build-jar]" >&2; exit 2 ;;
  esac
done
t0=$(date +%s)
log() { echo "build-image: $* ($(( $(date +%s) - t0 )) s)" >&2; }

# ---- tools (installed from Debian's mirror on first use) ----
missing=()
for tool in podman buildah mmdebstrap runc newuidmap; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if (( ${#missing[@]} )); then
  log "installing podman buildah mmdebstrap runc uidmap (missing: ${missing[*]})"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah mmdebstrap runc uidmap >&2
fi

# ---- podman/buildah configuration for this host ----
state="$root/.tools/containers"
mkdir -p "$state/graph" "$state/run" "$state/cache"
# crun 1.8.1 refuses this host's cgroup layout: runc with cgroupfs. The default nofile ulimit
# cannot be raised here: fixed ulimits. No journald: events go to a file. No CNI setup: host network.
cat > "$state/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$state/run/events.log"
EOF
cat > "$state/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$state/graph"
runroot = "$state/run"
EOF
export CONTAINERS_CONF="$state/containers.conf"
export CONTAINERS_STORAGE_CONF="$state/storage.conf"

# ---- version and jar ----
pom_version=$(sed -n '0,/<artifactId>bbr-parent<\/artifactId>/d; s:.*<version>\(.*\)</version>.*:\1:p' pom.xml | head -1)
version=${pom_version%-SNAPSHOT}
image="localhost/body-based-router:$version"
jar=bbr-server/target/bbr-server.jar
if $build_jar || [[ ! -f "$jar" ]]; then
  log "building $jar (mvn -pl bbr-server -am package -DskipTests)"
  mvn -B -ntp -q -pl bbr-server -am package -DskipTests >&2
fi

# ---- base rootfs: Debian minbase (cached; delete .tools/image/rootfs-*.tar to refresh) ----
suite=$(sed -n 's/^Suites:[[:space:]]*\([a-z]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
suite=${suite:-bookworm}
work="$root/.tools/image"
mkdir -p "$work"
rootfs="$work/rootfs-$suite-minbase.tar"
if [[ ! -s "$rootfs" ]]; then
  log "mmdebstrap --variant=minbase $suite (libc, ca-certificates, tzdata)"
  m0=$(date +%s)
  mmdebstrap --quiet --format=tar --variant=minbase --include=ca-certificates,tzdata \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
    "$suite" "$rootfs.part" http://deb.debian.org/debian >&2
  mv "$rootfs.part" "$rootfs"
  log "mmdebstrap took $(( $(date +%s) - m0 )) s"
fi

# ---- Java runtime: jlink from the Temurin 25 JDK (cached per JDK release and module list) ----
jdk=$(ls -d /usr/lib/jvm/temurin-25* 2>/dev/null | head -1 || true)
[[ -n "$jdk" ]] || { echo "no Temurin 25 JDK under /usr/lib/jvm" >&2; exit 1; }
jdk_release=$(sed -n 's/^JAVA_RUNTIME_VERSION="\(.*\)"/\1/p' "$jdk/release")
# What jdeps finds in the jar, plus what it cannot see: EC/EdDSA TLS (jdk.crypto.ec), Netty's
# sun.misc.Unsafe (jdk.unsupported), DNS names (jdk.naming.dns), OperatingSystemMXBean for the
# process metrics (jdk.management), and jcmd for heap checks in a running pod (jdk.jcmd).
# jdeps takes minutes on the shaded jar: its answer is cached per list of class names in the jar.
jar_key=$("$jdk/bin/jar" tf "$jar" | LC_ALL=C sort | sha256sum | cut -c1-16)
deps_file="$work/jdeps-$jar_key.txt"
if [[ ! -s "$deps_file" ]]; then
  log "jdeps --print-module-deps $jar"
  "$jdk/bin/jdeps" --ignore-missing-deps --multi-release 25 --print-module-deps "$jar" 2>/dev/null \
    | tail -1 > "$deps_file.part"
  mv "$deps_file.part" "$deps_file"
fi
deps=$(cat "$deps_file")
modules=$(echo "$deps,jdk.crypto.ec,jdk.unsupported,jdk.naming.dns,jdk.management,jdk.jcmd" \
  | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)
runtime="$work/jre-$jdk_release-$(echo "$modules" | sha256sum | cut -c1-12)"
if [[ ! -x "$runtime/bin/java" ]]; then
  log "jlink $jdk_release: $modules"
  rm -rf "$runtime"
  "$jdk/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files \
    --compress=zip-6 --generate-cds-archive --output "$runtime" >&2
fi

# ---- the image ----
ctx="$work/context"
rm -rf "$ctx"
mkdir -p "$ctx"
ln "$rootfs" "$ctx/rootfs.tar" 2>/dev/null || cp "$rootfs" "$ctx/rootfs.tar"
cp -a "$runtime" "$ctx/jre"
cp "$jar" "$ctx/bbr-server.jar"
source_url=${BBR_IMAGE_SOURCE:-}   # no public repository yet: set it when publishing
log "podman build $image"
b0=$(date +%s)
podman build --quiet --network=host --pull=never -f deploy/image/Containerfile \
  --build-arg "VERSION=$version" --build-arg "SOURCE=$source_url" \
  --build-arg "JAVA_VERSION=$jdk_release" -t "$image" "$ctx" >&2
log "podman build took $(( $(date +%s) - b0 )) s"

archive="$work/body-based-router-$version.oci.tar"
rm -f "$archive"
podman save --quiet --format oci-archive -o "$archive" "$image"
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image:   $image"
echo "size:    $(( size / 1000000 )) MB ($size bytes, uncompressed); archive $(( $(stat -c %s "$archive") / 1000000 )) MB"
echo "runtime: Temurin $jdk_release (jlink: $modules)"
echo "archive: $archive (skopeo copy oci-archive:$archive docker://REGISTRY/body-based-router:$version)"
log "done"
