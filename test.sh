#!/usr/bin/env bash
# Builds everything, then runs every test project against the built artifacts.
# Ends with one line "tests: N passed, N failed, N skipped" and a non-zero exit
# status if anything failed or no test ran.
set -uo pipefail
cd "$(dirname "$0")"

# --package: the release tarball and the .NET tool package are tested too (PackageTests).
./build.sh --package || { echo "tests: 0 passed, 1 failed (build failed)"; exit 1; }

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

# Count outcomes from the TRX files: one UnitTestResult element per test (the
# ResultSummary element carries an outcome too, which must not be counted).
count() { grep -o "<UnitTestResult [^>]*outcome=\"$2\"" "$1" | wc -l; }
passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  passed=$((passed + $(count "$trx" Passed)))
  failed=$((failed + $(count "$trx" Failed)))
  skipped=$((skipped + $(count "$trx" NotExecuted)))
done
# Name what failed, so that a failure in CI's log says which test it was.
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  grep -o '<UnitTestResult [^>]*outcome="Failed"' "$trx" | grep -o 'testName="[^"]*"' | sed 's/^/FAILED: /'
done
# A skipped test names what it needs (an optional tool missing from this machine).
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  grep -A3 'outcome="NotExecuted"' "$trx" | sed -n 's/.*testName="\([^"]*\)".*/SKIPPED: \1/p; s/.*<Message>\(.*\)<\/Message>.*/  because \1/p'
done
echo "tests: $passed passed, $failed failed, $skipped skipped"
if (( failed > 0 || passed == 0 )); then status=1; fi
exit $status
