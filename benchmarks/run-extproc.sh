#!/usr/bin/env bash
# The router against a no-op ext_proc server (the floor) under the same Envoy-like ext_proc load:
# both as separate JVMs launched the same way (-Xms512m -Xmx512m, plaintext), a closed-loop gRPC
# client with 32 requests in flight on 2 HTTP/2 connections, bodies of 1 KiB to 1 MiB (model first)
# in FULL_DUPLEX_STREAMED (16 KiB chunks) and BUFFERED. Router and floor alternate in 2.5 s windows (after 1 s each of warm-up),
# 3 rounds; prints medians and the router/floor ratios as Markdown and writes
# benchmarks/results/extproc.json. About 4 minutes on 2 cores. Extra arguments go to ExtProcBench,
# e.g. `--sizes 1Ki --modes FULL_DUPLEX_STREAMED --rounds 5`.
exec "$(dirname "$0")/load-bench.sh" ExtProcBench extproc --out benchmarks/results/extproc.json "$@"
