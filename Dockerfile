# syntax=docker/dockerfile:1
# Body-based router image: build the shaded jar, run it on a JRE as a non-root user.
#   docker build -t body-based-router:dev .
# Without Docker: scripts/build-image.sh (podman/buildah, deploy/image/Containerfile).

FROM maven:3.9-eclipse-temurin-17 AS build
WORKDIR /src
# Every module's pom (the reactor reads them all), then the sources of what the server needs.
COPY pom.xml ./
COPY allowlist-watcher/pom.xml allowlist-watcher/
COPY bbr-server/pom.xml bbr-server/
COPY benchmarks/pom.xml benchmarks/
COPY allowlist-watcher/src allowlist-watcher/src
COPY bbr-server/src bbr-server/src
RUN --mount=type=cache,target=/root/.m2 \
    mvn -B -DskipTests package -pl bbr-server -am \
 && cp bbr-server/target/bbr-server.jar /bbr-server.jar

# The same runtime as scripts/build-image.sh (docs/decisions.md 27): a jlink'd Temurin 25 on
# Debian bookworm with libc, ca-certificates and tzdata.
FROM eclipse-temurin:25-jdk AS jre
COPY --from=build /bbr-server.jar /bbr-server.jar
RUN jlink --add-modules "$(jdeps --ignore-missing-deps --multi-release 25 --print-module-deps /bbr-server.jar),jdk.crypto.ec,jdk.unsupported,jdk.naming.dns,jdk.management,jdk.jcmd" \
      --strip-debug --no-man-pages --no-header-files --compress=zip-6 --generate-cds-archive \
      --output /jre

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=jre /jre /opt/java
ENV JAVA_HOME=/opt/java PATH=/opt/java/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
COPY --from=build --chown=0:0 --chmod=0444 /bbr-server.jar /app/bbr-server.jar
LABEL org.opencontainers.image.title="body-based-router" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
# Numeric uid so runAsNonRoot can be verified without /etc/passwd.
USER 65532:65532
# ext_proc (TLS/h2 by default), plaintext grpc.health.v1, Prometheus /metrics and /debug/allowlist.
EXPOSE 9004 9005 9090
# Heap from the container's memory limit; exit (and be restarted) rather than limp on OOM. Given
# as arguments, not JAVA_TOOL_OPTIONS, whose "Picked up ..." line would break the first line of
# every JSON log; --sun-misc-unsafe-memory-access=allow (JDK 23+) likewise keeps protobuf's and
# Netty's use of sun.misc.Unsafe from printing "WARNING: A terminally deprecated method" lines.
# Serial GC, 2 CPUs and the footprint options are the chart's jvm defaults (decision 41: peak
# RSS 154 MiB against 314 MiB under small-body load). The chart passes the same command with its
# jvm values.
ENTRYPOINT ["java", "-XX:MaxRAMPercentage=75", "-XX:+ExitOnOutOfMemoryError", "-XX:+UseSerialGC", "-XX:ActiveProcessorCount=2", "-XX:TrimNativeHeapInterval=1000", "-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=30", "--sun-misc-unsafe-memory-access=allow", "-jar", "/app/bbr-server.jar"]
