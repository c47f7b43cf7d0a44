# syntax=docker/dockerfile:1
# Body-based router image: build the shaded jar, run it on a JRE as a non-root user.
#   docker build -t body-based-router:dev .

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

FROM eclipse-temurin:25-jre
# Heap from the container's memory limit; exit (and be restarted) rather than limp on OOM.
ENV JAVA_TOOL_OPTIONS="-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"
COPY --from=build --chown=0:0 --chmod=0444 /bbr-server.jar /app/bbr-server.jar
# Numeric uid so runAsNonRoot can be verified without /etc/passwd.
USER 65532:65532
# ext_proc (TLS/h2 by default), plaintext grpc.health.v1, Prometheus /metrics and /debug/allowlist.
EXPOSE 9004 9005 9090
ENTRYPOINT ["java", "-jar", "/app/bbr-server.jar"]
