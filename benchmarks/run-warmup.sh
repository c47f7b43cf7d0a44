#!/usr/bin/env bash
# How fast the router is from its first SERVING, without and with the chart's 5 s warm-up
# (--warm-up): each variant started fresh, then 1 KiB FULL_DUPLEX_STREAMED closed-loop load in 1 s
# windows; prints start -> SERVING, steady throughput and the seconds after SERVING until every
# window is at 80 % of steady, as Markdown, and writes benchmarks/results/warmup.json. About
# 2 minutes with the defaults of run-all.sh. Extra arguments go to WarmupBench, e.g. `--rounds 3`.
exec "$(dirname "$0")/load-bench.sh" WarmupBench warmup --out benchmarks/results/warmup.json "$@"
