#!/usr/bin/env bash
# The router's peak resident memory (VmHWM) under sustained 1 KiB FULL_DUPLEX_STREAMED closed-loop
# load, 2 streams in flight, with the chart's JVM options and a 512 MiB limit (-XX:MaxRAM), per GC
# and CPU-count choice; each variant a fresh JVM, alternating, medians. Run it with the image's JDK
# (JAVA=/usr/lib/jvm/temurin-25*/bin/java) to measure what the chart runs. Prints Markdown and
# writes benchmarks/results/rss.json; about 5 minutes. Extra arguments go to RssBench.
exec "$(dirname "$0")/load-bench.sh" RssBench rss --out benchmarks/results/rss.json "$@"
