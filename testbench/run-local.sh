#!/usr/bin/env bash
# The testbench loop without Docker: the exporter over a private stats
# directory, Debian's prometheus scraping it on loopback, and the workload
# (the seed's driver and a Python program) under the allocator. It waits until
# Prometheus has scraped the workload's konfiscator_malloc_total, prints what it
# found, and stops everything it started.
#
#   testbench/run-local.sh [--no-build] [--hold]
#
#   --no-build  use the existing artifacts/
#   --hold      keep everything running (workload looping) until Ctrl-C
#
# Needs: prometheus on PATH (Debian package "prometheus"), python3, curl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=1 hold=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --hold) hold=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run-local.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done
command -v prometheus >/dev/null || { echo "run-local.sh: prometheus is not installed (apt-get install prometheus)" >&2; exit 1; }
command -v curl >/dev/null || { echo "run-local.sh: curl is not installed" >&2; exit 1; }

if (( build )); then "$root/build.sh"; fi
tool=$root/artifacts/bin/konfiscator
lib=$root/artifacts/lib/libkonfiscator.so
[[ -x $tool && -f $lib ]] || { echo "run-local.sh: build first (./build.sh)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
exporter_port=$(free_port)
prometheus_port=$(free_port)
mkdir -p "$work/tsdb"
mkdir -m 0700 "$work/stats"   # a stats directory must be private (mode 0700)

"$tool" exporter --listen "127.0.0.1:$exporter_port" --stats-dir "$work/stats" >"$work/exporter.log" 2>&1 &
pids+=($!)

cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $here/prometheus/alerts.yml
scrape_configs:
  - job_name: konfiscator
    static_configs:
      - targets: ["127.0.0.1:$exporter_port"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prometheus_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)

export KONFISCATOR_LIB=$lib KONFISCATOR_STATS_DIR=$work/stats PATH=$root/artifacts/bin:$PATH
if (( hold )); then
  WORKLOAD_ROUNDS=0 "$here/workload.sh" &
  pids+=($!)
  echo "exporter:   http://127.0.0.1:$exporter_port/metrics"
  echo "prometheus: http://127.0.0.1:$prometheus_port"
  echo "Ctrl-C stops everything."
  wait
  exit 0
fi

WORKLOAD_ROUNDS=3 WORKLOAD_PAUSE=0.5 "$here/workload.sh"

# Ask Prometheus (not the exporter) for the driver's figures: the whole loop.
query() { curl -fsS --get "http://127.0.0.1:$prometheus_port/api/v1/query" --data-urlencode "query=$1"; }
found=""
for _ in $(seq 1 60); do
  answer=$(query 'konfiscator_malloc_total{command="konf-driver"}' 2>/dev/null || true)
  value=$(python3 -c 'import json,sys
try:
    r = json.loads(sys.argv[1])["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")' "$answer")
  if [[ -n $value && $value != 0 ]]; then found=$value; break; fi
  sleep 1
done
if [[ -z $found ]]; then
  echo "run-local.sh: Prometheus never saw konfiscator_malloc_total for the driver" >&2
  echo "--- exporter log"; cat "$work/exporter.log" >&2
  echo "--- prometheus log (tail)"; tail -20 "$work/prometheus.log" >&2
  exit 1
fi
echo "prometheus: konfiscator_malloc_total{command=\"konf-driver\"} = $found"
query 'sum by (command) (konfiscator_malloc_total)' | python3 -c 'import json,sys
for r in json.load(sys.stdin)["data"]["result"]:
    print("prometheus: malloc calls of %-16s %s" % (r["metric"].get("command","?"), r["value"][1]))'
echo "run-local.sh: the whole loop works"
