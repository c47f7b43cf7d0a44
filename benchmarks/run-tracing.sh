#!/usr/bin/env bash
# What --tracing costs: two router JVMs launched the same way, --tracing=false and --tracing=true
# with every request sampled (always_on) and exported over OTLP/gRPC to a real receiver in the
# load client's JVM, under the ext_proc load of run-extproc.sh (1 KiB bodies, both modes, 3 rounds
# of 2.5 s windows, order flipped each round). About 1 minute on 2 cores. Extra arguments go to
# TracingBench, e.g. `--sizes 1Ki,256Ki --rounds 5`.
exec "$(dirname "$0")/load-bench.sh" TracingBench tracing "$@"
