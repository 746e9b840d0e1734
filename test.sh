#!/usr/bin/env bash
# Builds everything, then runs every test project against the built artifacts.
# Ends with one line "tests: N passed, N failed, N skipped" and a non-zero exit
# status if anything failed or no test ran.
set -uo pipefail
cd "$(dirname "$0")"

./build.sh || { echo "tests: 0 passed, 1 failed (build failed)"; exit 1; }

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0
for project in tests/*/*.csproj; do
  name=$(basename "$project" .csproj)
  echo "== $name"
  if ! dotnet test "$project" -c Release -nologo --logger "trx;LogFileName=$name.trx" \
       --results-directory "$results" 2>&1 | tee "$results/$name.log"; then
    status=1
  fi
done

# Count outcomes from the TRX files (one UnitTestResult per test).
passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  passed=$((passed + $(grep -o 'outcome="Passed"' "$trx" | wc -l)))
  failed=$((failed + $(grep -o 'outcome="Failed"' "$trx" | wc -l)))
  skipped=$((skipped + $(grep -o 'outcome="NotExecuted"' "$trx" | wc -l)))
done
echo "tests: $passed passed, $failed failed, $skipped skipped"
if (( failed > 0 || passed == 0 )); then status=1; fi
exit $status
