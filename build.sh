#!/usr/bin/env bash
# Builds everything into artifacts/:
#   artifacts/lib/libkonfiscator.so   the allocator (NativeAOT, no .NET runtime inside)
#   artifacts/bin/konfiscator         the tool (run, exporter, stats, bench)
#   artifacts/bin/konf-driver         the seed's driver program (C)
# Usage: ./build.sh [--lib-only]
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
config=Release
mkdir -p artifacts/lib artifacts/bin

echo "== libkonfiscator.so (NativeAOT)"
# Quiet, but errors and warnings still show (and fail the build).
dotnet publish src/Native/Konfiscator.Native.csproj -c "$config" -nologo -v quiet \
  -o artifacts/obj/native
cp artifacts/obj/native/konfiscator.so artifacts/lib/libkonfiscator.so

# The library must stand alone: libc (and the dynamic loader) only.
deps=$(readelf -d artifacts/lib/libkonfiscator.so | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
for dep in $deps; do
  case "$dep" in
    libc.so.6|ld-linux-x86-64.so.2) ;;
    *) echo "build.sh: libkonfiscator.so needs $dep; it must need libc only" >&2; exit 1 ;;
  esac
done

echo "== C programs"
cc=${CC:-gcc}
"$cc" -O2 -Wall -Werror -o artifacts/bin/konf-driver tests/native/driver.c

if [[ "${1:-}" == "--lib-only" ]]; then exit 0; fi

if [[ -f src/Konfiscator.Tool/Konfiscator.Tool.csproj ]]; then
  echo "== konfiscator tool"
  dotnet publish src/Konfiscator.Tool/Konfiscator.Tool.csproj -c "$config" -nologo -v quiet \
    -o artifacts/bin
fi
echo "built: $root/artifacts/lib/libkonfiscator.so"
