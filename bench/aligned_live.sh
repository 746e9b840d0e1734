#!/usr/bin/env bash
# Per-call time of aligned requests among live blocks, konfiscator against glibc
# (issue 8, case 6; docs/performance/aligned.md). Runs tests/native/aligned_live.c
# (LIVE blocks of malloc(32..288), then 5000 rounds of free + memalign(A, 32..288))
# RUNS times per cell, glibc and the library interleaved, and prints a Markdown
# table of ns per memalign call (the lowest and the median of the runs) and the
# ratios to glibc.
#
# Usage: bench/aligned_live.sh [RUNS] [LIBRARY]   (defaults: 9, artifacts/lib/libkonfiscator.so)
# Environment: LIVES (default "1000 10000 30000"), ALIGNS (default "16 64 256 1024 4096").
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-9}
lib=$(realpath "${2:-artifacts/lib/libkonfiscator.so}")
lives=${LIVES:-1000 10000 30000}
aligns=${ALIGNS:-16 64 256 1024 4096}
[ -f "$lib" ] || { echo "aligned_live.sh: no library at $lib (run ./build.sh --lib-only)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/aligned_live" tests/native/aligned_live.c -ldl

ns() { sed -n 's/.*ns_per_memalign=\([0-9]*\).*/\1/p'; }
lowest() { sort -n | head -1; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "| live | A | glibc ns (lowest / median) | konfiscator ns (lowest / median) | ratio (lowest / median) |"
echo "|---:|---:|---:|---:|---:|"
for live in $lives; do
  for a in $aligns; do
    : > "$work/g"; : > "$work/k"
    for _ in $(seq "$runs"); do
      "$work/aligned_live" "$live" "$a" 5000 | ns >> "$work/g"
      LD_PRELOAD=$lib "$work/aligned_live" "$live" "$a" 5000 | ns >> "$work/k"
    done
    gl=$(lowest < "$work/g"); gm=$(median < "$work/g")
    kl=$(lowest < "$work/k"); km=$(median < "$work/k")
    echo "| $live | $a | $gl / $gm | $kl / $km | $(ratio "$kl" "$gl") / $(ratio "$km" "$gm") |"
  done
done
