#!/usr/bin/env bash
# Fuzzes each Jazzer target (docs/fuzzing.md) for SECONDS_PER_TARGET (default 60), one JVM per
# target, and fails if any target finds a crash or a broken property. Prints, per target, how long
# it ran, how many inputs it executed and how large its corpus is.
#
#   scripts/fuzz.sh            # 60 s per target, as CI runs it
#   scripts/fuzz.sh 3600       # a developer's longer run
#
# Findings are written where the regression run replays them:
#   bbr-server/src/test/resources/<package>/<Class>Inputs/<method>/crash-<sha1>
# The corpus each run grows is kept in bbr-server/.fuzz-corpus/ (git-ignored) and reused by the
# next run; it is moved aside afterwards because a plain `mvn verify` would replay all of it.
# Extra Maven arguments can be given in FUZZ_MVN_ARGS (e.g. -Djazzer.keep_going=20 -o).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi
targets=(
  dev.bbr.server.extraction.ModelExtractorFuzzTest
  dev.bbr.server.extproc.RouterStreamFuzzTest
)

module=bbr-server
work="$module/target/fuzz"
mkdir -p "$work" "$module/.fuzz-corpus"
# Refusals are logged once per request: thousands of lines a second while fuzzing. Errors only.
cat > "$work/logback-fuzz.xml" <<'EOF'
<configuration>
  <appender name="TEXT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level %logger{20} %msg%n</pattern></encoder>
  </appender>
  <root level="ERROR"><appender-ref ref="TEXT"/></root>
</configuration>
EOF

# Jazzer reads and writes the generated corpus in <module>/.cifuzz-corpus/<Class>/<method>.
restore_corpus() {
  if [[ -d "$module/.cifuzz-corpus" ]]; then
    cp -a "$module/.cifuzz-corpus/." "$module/.fuzz-corpus/"
    rm -rf "$module/.cifuzz-corpus"
  fi
}
trap restore_corpus EXIT
restore_corpus
mv "$module/.fuzz-corpus" "$module/.cifuzz-corpus"
mkdir -p "$module/.fuzz-corpus"

failed=()
summary=()
for target in "${targets[@]}"; do
  class=${target##*.}
  log="$work/$class.log"
  inputs="$module/src/test/resources/${target%.*}"
  inputs="${inputs//.//}/${class}Inputs"
  before=$(find "$inputs" -name 'crash-*' 2>/dev/null | sort)
  echo "== fuzzing $class for ${seconds} s (log: $log)"
  start=$(date +%s)
  status=0
  # jazzer.hooks=true: the comparison hooks guide the fuzzer (src/test/resources/
  # junit-platform.properties turns them off for the regression run). Jackson is instrumented too,
  # so that coverage of the reference parser steers the bodies towards varied JSON.
  # shellcheck disable=SC2086
  JAZZER_FUZZ=1 mvn -B -ntp -pl "$module" -am test \
      -Dtest="$class" -Dsurefire.failIfNoSpecifiedTests=false \
      -Djazzer.max_duration="${seconds}s" -Djazzer.hooks=true \
      '-Djazzer.instrumentation_includes=dev.bbr.**:com.fasterxml.jackson.core.**' \
      -Dlogback.configurationFile="$PWD/$work/logback-fuzz.xml" \
      ${FUZZ_MVN_ARGS:-} > "$log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - start ))
  runs=$(grep -o '^Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $2 " runs in " $5 " s"}')
  last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 || true)
  corpus=$(find "$module/.cifuzz-corpus" -path "*${class}*" -type f 2>/dev/null | wc -l)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  line="$class: ${runs:-no libFuzzer summary}; coverage ${cov:-?}; corpus $corpus inputs; mvn ${elapsed} s"
  after=$(find "$inputs" -name 'crash-*' 2>/dev/null | sort)
  new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d' || true)
  if (( status != 0 )) || [[ -n "$new" ]]; then
    failed+=("$class")
    line="$line; FAILED (exit $status)"
    grep -E -A12 '^== Java Exception|^== libFuzzer crashing input|ERROR\] (Tests|Failed)' "$log" | head -60 || true
    [[ -n "$new" ]] && echo "new findings (replayed by mvn verify until fixed or removed):" && echo "$new"
  fi
  echo "$line"
  summary+=("$line")
done

echo "== fuzzing summary"
printf '%s\n' "${summary[@]}"
if (( ${#failed[@]} > 0 )); then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
