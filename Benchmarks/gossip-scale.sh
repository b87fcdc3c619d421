#!/usr/bin/env bash
# Benchmarks/gossip-scale.sh - SWIM at large cluster sizes in the deterministic simulator (issue 19 §3): for each size
# and loss rate one crash experiment with the timings `lodestar` runs with (300 ms probes): first suspicion, "every
# live member says dead", false suspicions and deaths (incidents / member views), messages per member per second, and
# the wall time the simulation took. Runs GossipScaleTests (skipped in `make test`) with LODESTAR_GOSSIP_SCALE set.
#
# Usage:   Benchmarks/gossip-scale.sh [--save]
# Env:     SIZES=1000,5000  LOSSES=0,0.1,0.3  SEEDS=1  CONFIG=debug|release (release builds the tests optimised: slow
#          to build, several times faster to run)  TIMEOUT=3600 (s for the whole run)  WINDOW=60 (simulated seconds
#          after the crash at most: "never" in the table means not within it)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-1000,5000} LOSSES=${LOSSES:-0,0.1,0.3} SEEDS=${SEEDS:-1} CONFIG=${CONFIG:-debug} TIMEOUT=${TIMEOUT:-3600}
WINDOW=${WINDOW:-60}
out=/dev/null
if [ "${1:-}" = --save ]; then out=Benchmarks/results/$(date -u +%F)-gossip-scale.txt; fi
{
    echo "== gossip scale: sizes $SIZES, losses $LOSSES, seeds $SEEDS, window $WINDOW s, $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ)"
    LODESTAR_GOSSIP_SCALE=$SIZES LODESTAR_GOSSIP_LOSSES=$LOSSES LODESTAR_GOSSIP_SEEDS=$SEEDS LODESTAR_GOSSIP_WINDOW=$WINDOW \
        timeout "$TIMEOUT" swift test -c "$CONFIG" --filter GossipScaleTests 2>&1 | grep -E '^GOSSIP-SCALE|error|Executed' | sed 's/^GOSSIP-SCALE //'
} | tee "$out"
