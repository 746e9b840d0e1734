#!/usr/bin/env bash
# Builds everything into artifacts/:
#   artifacts/lib/libkonfiscator.so   the allocator (NativeAOT, no .NET runtime inside)
#   artifacts/bin/konfiscator         the tool (run, exporter, stats, ps, top, heap, clean, bench)
#   artifacts/bin/konf-driver         the seed's driver program (C)
# Usage: ./build.sh [--lib-only | --package]
#   --lib-only  the library and the driver only
#   --package   also artifacts/konfiscator-<version>-linux-x64.tar.gz (runs without .NET:
#               the tool is published self-contained; README, LICENSE and docs inside) and artifacts/nupkg/konfiscator.<version>.nupkg
#               (the tool as a .NET global tool, the library and driver inside)
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

mode=${1:-}
case "$mode" in
  ""|--lib-only|--package) ;;
  *) echo "build.sh: unknown option $mode (use --lib-only or --package)" >&2; exit 2 ;;
esac
if [[ "$mode" == "--lib-only" ]]; then exit 0; fi

echo "== konfiscator tool"
tool=src/Konfiscator.Tool/Konfiscator.Tool.csproj
dotnet publish "$tool" -c "$config" -nologo -v quiet -o artifacts/bin
echo "built: $root/artifacts/lib/libkonfiscator.so"

if [[ "$mode" == "--package" ]]; then
  version=$(dotnet msbuild "$tool" -nologo -getProperty:Version)
  name=konfiscator-$version-linux-x64
  stage=artifacts/obj/package/$name
  echo "== $name.tar.gz"
  rm -rf "$stage" artifacts/konfiscator-*-linux-x64.tar.gz artifacts/nupkg && mkdir -p "$stage/bin" "$stage/lib"
  # Self-contained, one file: the runtime travels with the tool, so the machine needs no .NET.
  dotnet publish "$tool" -c "$config" -nologo -v quiet -r linux-x64 --self-contained true \
    -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true -p:DebugType=none \
    -o artifacts/obj/package/tool
  cp artifacts/obj/package/tool/konfiscator "$stage/bin/"
  cp artifacts/bin/konf-driver "$stage/bin/"
  cp artifacts/lib/libkonfiscator.so "$stage/lib/"
  cp README.md LICENSE "$stage/"
  mkdir -p "$stage/docs" && cp docs/metrics.md docs/heap.md "$stage/docs/"
  tar -czf "artifacts/$name.tar.gz" -C artifacts/obj/package "$name"
  echo "packaged: $root/artifacts/$name.tar.gz"

  echo "== konfiscator.$version.nupkg (.NET tool)"
  dotnet pack "$tool" -c "$config" -nologo -v quiet -p:KonfiscatorToolPackage=true -o artifacts/nupkg
  echo "packaged: $root/artifacts/nupkg/konfiscator.$version.nupkg"
fi
