#!/usr/bin/env bash
# The time-dependent test files, run again at other dates under Debian's
# faketime (libfaketime; one clock shared by every process a test starts): a
# leap day seconds before midnight, the first seconds of 2026 and the last of
# 2030. Redis and PostgreSQL keep the real time, so code or a test that mixes
# the two clocks fails here.
#
#   npm run test:faketime
#   STELLA_FAKETIME_DATES='2027-06-30 23:59:59,2029-03-01 00:00:00' npm run test:faketime   # all files at these dates
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dev/ensure-packages.sh faketime

# The quick files whose outcome depends on the clock: run at both ends of the supported range too.
QUICK=(
  test/quota.test.ts
  test/tokens.test.ts
  test/ops.test.ts
  test/metrics.test.ts
  test/pipeline-stages.test.ts
  test/kit-from-future.test.ts
)
# Every file whose outcome depends on the clock, at a leap day seconds before midnight.
ALL=(
  "${QUICK[@]}"
  test/pipeline-cli.test.ts
  test/scan-api-cli.test.ts
  test/verify-cli.test.ts
  test/trust-cli.test.ts
  test/trust-pipeline.test.ts
  test/e2e-airgap.test.ts
  test/token-desk.test.ts
  test/delta-before-base.test.ts
  test/api-bad-day.test.ts
  test/freshness.test.ts
  test/feeds-sync.test.ts
  test/kit-euvd.test.ts
  test/dry-run.test.ts
)

run_at() { # date, files...
  local when=$1
  shift
  echo "== $# test files at $when (faketime)"
  faketime "$when" node --import tsx --test --test-concurrency=2 --test-timeout=300000 "$@"
}

if [ -n "${STELLA_FAKETIME_DATES:-}" ]; then
  IFS=',' read -r -a dates <<< "$STELLA_FAKETIME_DATES"
  for when in "${dates[@]}"; do run_at "$when" "${ALL[@]}"; done
  exit 0
fi
run_at '2028-02-29 23:59:50' "${ALL[@]}"
run_at '2026-01-01 00:00:05' "${QUICK[@]}"
run_at '2030-12-31 23:59:50' "${QUICK[@]}"
