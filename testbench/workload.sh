#!/bin/sh
# The testbench workload: the seed's driver and a small Python program, over and
# over, under the allocator. Each run is a short-lived process, so the exporter's
# grouping (command label, counters folded in from exited processes) is visible.
set -eu
lib=${KONFISCATOR_LIB:?set KONFISCATOR_LIB to libkonfiscator.so}
# The system python3, not a version manager's shim (a shell script running helpers).
python=$(command -v /usr/bin/python3 || command -v python3)
rounds=${WORKLOAD_ROUNDS:-0}   # 0 = forever
pause=${WORKLOAD_PAUSE:-1}
i=0
while [ "$rounds" -eq 0 ] || [ "$i" -lt "$rounds" ]; do
  LD_PRELOAD=$lib konf-driver >/dev/null
  LD_PRELOAD=$lib "$python" -c '
import json, random
data = [{"id": i, "tags": ["x" * random.randint(1, 64)] * random.randint(1, 8)} for i in range(20000)]
assert json.loads(json.dumps(data)) == data
' 
  i=$((i + 1))
  sleep "$pause"
done
