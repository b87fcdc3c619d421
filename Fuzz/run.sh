#!/usr/bin/env bash
# Builds the libFuzzer target for the DNS message decoder and answer path, and runs it.
#   bash Fuzz/run.sh [SECONDS]        (default 600 = 10 minutes)
# Seeds come from Fuzz/corpus (committed); new inputs go to a scratch corpus under .build-fuzz/.
# A crash leaves crash-* in Fuzz/; replay it with: swift run lodestar-fuzz Fuzz/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
swift build --scratch-path .build-fuzz --product lodestar-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
work=.build-fuzz/corpus
mkdir -p "$work"
cp -n Fuzz/corpus/* "$work"/ 2>/dev/null || true
# The at-exit leak check flags the fuzz target's process-lifetime global (the zone); per-input leaks are still checked.
export ASAN_OPTIONS=detect_leaks=0
cd Fuzz
exec ../.build-fuzz/debug/lodestar-fuzz "../$work" -max_total_time="$seconds" -max_len=1500 -timeout=5 -print_final_stats=1
