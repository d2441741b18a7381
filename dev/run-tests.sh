#!/usr/bin/env bash
# The test suites (node's test runner on test/*.test.ts):
#
#   npm test              every test file but the system tests below, two files at a time
#                         (--test-concurrency=2, one per core): under 15 minutes on 2 cores
#   npm run test:system   the system tests: each starts a whole site of real processes (API,
#                         workers, Redis, PostgreSQL, s3rver, sentinels, a registry) and faults
#                         it, or drives the whole pipeline many times over; one file at a time,
#                         so none is starved of CPU by another (their waits are real time)
#   dev/run-tests.sh all  both, two at a time
#
# CI (.ci/run) runs npm test, then npm run test:system, then npm run test:faketime.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SYSTEM=(
  test/api-db-full.test.ts
  test/db-full.test.ts
  test/dry-run.test.ts
  test/e2e-airgap.test.ts
  test/faults.test.ts
  test/feeds-sync.test.ts
  test/mirror-faults.test.ts
  test/pipeline-crash.test.ts
  test/publish-e2e.test.ts
  test/queue-faults.test.ts
  test/scale-out.test.ts
  test/trust-pipeline.test.ts
)

files=()
case "${1:-main}" in
  main)
    concurrency=2
    for f in test/*.test.ts; do
      system=
      for s in "${SYSTEM[@]}"; do [ "$f" = "$s" ] && system=1; done
      [ -n "$system" ] || files+=("$f")
    done
    ;;
  system)
    concurrency=1
    files=("${SYSTEM[@]}")
    ;;
  all)
    concurrency=2
    files=(test/*.test.ts)
    ;;
  *)
    echo "usage: dev/run-tests.sh [main|system|all]" >&2
    exit 2
    ;;
esac
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "error: $f is listed but missing" >&2; exit 2; }
done
exec node --import tsx --test --test-concurrency="$concurrency" --test-timeout=300000 "${files[@]}"
