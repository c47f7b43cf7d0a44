#!/usr/bin/env bash
# The router's heap and RSS with 64 concurrent FULL_DUPLEX_STREAMED streams of 8 MiB bodies, model
# first and then model last, each phase against a fresh router JVM (-Xmx512m,
# --max-buffered-bytes 16Mi, --max-buffered-bytes-total 96Mi), next to the bound expected for each.
# Prints Markdown and writes benchmarks/results/memory.json. About 90 seconds. Extra arguments go to
# MemoryBench, e.g. `--duration 60s --max-buffered-bytes-total 192Mi`.
exec "$(dirname "$0")/load-bench.sh" MemoryBench memory --out benchmarks/results/memory.json "$@"
