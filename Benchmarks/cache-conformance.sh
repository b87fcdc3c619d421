#!/usr/bin/env bash
# Benchmarks/cache-conformance.sh - the HTTP cache conformance cases (the HTTP WG cache-tests
# suite, transcribed in Tests/Conformance/) run the same way against three shared caches,
# one after the other, each in front of the runner's own scripted origin:
#
#   Tests/Conformance/cache_conformance.py --> proxy under test --> runner's origin (127.0.0.1:ORIGIN_PORT)
#
# nginx     nginx with proxy_cache, config Benchmarks/cache-conformance/nginx.conf (no
#           proxy_cache_valid: only the origin's headers decide; proxy_cache_revalidate,
#           proxy_cache_lock, proxy_cache_use_stale error timeout updating http_502/503/504).
#           Runs from the temp dir with its own prefix, pid, logs and cache: /etc/nginx is unused.
# varnish   varnishd -F -n TMP/varnish -a 127.0.0.1:PORT -f TMP/varnish.vcl -s malloc,64m
#           -p default_ttl=0 -p default_grace=0 -p default_keep=3600; the VCL only names the
#           backend (Benchmarks/cache-conformance/varnish.vcl), the rest is the builtin VCL.
# lodestar  lodestar edge --topology TMP/topology.json --node conf-edge, the topology rendered
#           from Benchmarks/cache-conformance/topology.json (one edge, one origin pool with the
#           runner's origin, a catch-all route with the cache enabled).
#
# Each proxy is started, waited for (accepting connections), run against with the same runner
# options, and stopped (by its own PID). Then a table per suite file (cases passed by each)
# and the three CONFORMANCE lines are printed. Failures are results: the exit status is 0
# unless this script or the runner broke (2: bad settings, a port taken, nginx or varnishd
# not starting, a runner error). A lodestar edge that does not start (no binary, topology
# refused, crash) is reported as "CONFORMANCE lodestar: not run (...)" with its log's last
# lines, and exits 0 (1 with STRICT=1).
#
# Usage:   Benchmarks/cache-conformance.sh [--only nginx|varnish|lodestar] [-- RUNNER ARGS...]
#          (RUNNER ARGS go to cache_conformance.py, e.g. -- --only cc-response,vary --verbose)
# Env:     ONLY=nginx|varnish|lodestar (one proxy)  JOBS=32 (cases in parallel)  KEEP=1 (keep
#          the temp dir: rendered configs, proxy logs, runner outputs and JSON results)
#          LODESTAR_BIN=path (default .build/release/lodestar, else .build/debug/lodestar; never builds)
#          NGINX_PORT=18180 VARNISH_PORT=18181 LODESTAR_PORT=18182 DNS_PORT=18183 ORIGIN_PORT=18189
#          HOST=www.example.test READY_TIMEOUT=30 STRICT=1 (exit 1 when lodestar was not run)
# Needs:   python3, nginx, varnish. As root on Debian, missing ones are apt-get installed with
#          service starts forbidden (temporary policy-rc.d); if systemd runs and the install
#          enabled the nginx/varnish services anyway, they are stopped and disabled. Processes
#          not started by this script are never touched.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
. "$HERE/lib/common.sh"
BENCH_TAG=cacheconf # temp names: /tmp/lodestar-cacheconf.XXXXXX
DIE_STATUS=2
NEED_APT_GET=1
RUNNER=$ROOT/Tests/Conformance/cache_conformance.py
CONF=$HERE/cache-conformance

parse_args ONLY "nginx, varnish or lodestar" "--" "$@"

JOBS=${JOBS:-32}
KEEP=${KEEP:-0}
HOST=${HOST:-www.example.test}
NGINX_PORT=${NGINX_PORT:-18180}
VARNISH_PORT=${VARNISH_PORT:-18181}
LODESTAR_PORT=${LODESTAR_PORT:-18182}
DNS_PORT=${DNS_PORT:-18183}
ORIGIN_PORT=${ORIGIN_PORT:-18189}
READY_TIMEOUT=${READY_TIMEOUT:-30}
case ${ONLY:-} in
    "") PROXIES="nginx varnish lodestar" ;;
    nginx | varnish | lodestar) PROXIES=$ONLY ;;
    *) die "ONLY / --only must be nginx, varnish or lodestar (got '$ONLY')" ;;
esac
check_whole_numbers JOBS NGINX_PORT VARNISH_PORT LODESTAR_PORT DNS_PORT ORIGIN_PORT READY_TIMEOUT
[ -f "$RUNNER" ] || die "runner not found: $RUNNER"

# ---------------------------------------------------------------- tools ----
need python3
if want nginx; then need nginx; fi
if want varnish; then need varnishd:varnish; fi
install_missing
# systemd may still have enabled (or, without policy-rc.d support, started) the services
if [ ${#MISSING[@]} -gt 0 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    for pkg in "${MISSING[@]}"; do
        case $pkg in
            nginx) systemctl disable --now nginx.service >/dev/null 2>&1 || true ;;
            varnish) systemctl disable --now varnish.service varnishncsa.service >/dev/null 2>&1 || true ;;
        esac
    done
fi
PYTHON=$(command -v python3)

LODESTAR_BIN=${LODESTAR_BIN:-}
if want lodestar && [ -z "$LODESTAR_BIN" ]; then
    for candidate in "$ROOT/.build/release/lodestar" "$ROOT/.build/debug/lodestar"; do
        if [ -x "$candidate" ]; then LODESTAR_BIN=$candidate; break; fi
    done
fi

# ------------------------------------------------------------- temp dir ----
make_workdir

render() { # render TEMPLATE OUT PORT
    sed -e "s|@WORK@|$WORK|g" -e "s|@PROXY_PORT@|$3|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" -e "s|@DNS_PORT@|$DNS_PORT|g" "$1" >"$2"
}

port_busy() { "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

wait_ready() { # wait_ready PID PORT NAME LOG: 0 when PORT accepts, 1 when PID died or timed out
    local pid=$1 port=$2 name=$3 logfile=$4 i
    for i in $(seq 1 $((READY_TIMEOUT * 10))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before accepting connections; last lines of $logfile:"
            tail -n 20 "$logfile" >&2 || true
            return 1
        fi
        if port_busy "$port"; then return 0; fi
        sleep 0.1
    done
    log "$name did not accept connections on 127.0.0.1:$port within ${READY_TIMEOUT}s; last lines of $logfile:"
    tail -n 20 "$logfile" >&2 || true
    return 1
}
start_proxy() { # start_proxy OUT PORT NAME LOG COMMAND...: COMMAND in the background, output to OUT (PROXY_PID), then wait_ready
    local out=$1 port=$2 name=$3 logfile=$4
    shift 4
    "$@" >"$out" 2>&1 &
    PROXY_PID=$!
    track "$PROXY_PID"
    wait_ready "$PROXY_PID" "$port" "$name" "$logfile"
}
stop_proxy() { # the one start_proxy started
    kill_pids "$PROXY_PID"
    PIDS=()
}

declare -A NOTRUN=()
BROKEN=0
run_runner() { # run_runner NAME PORT
    local name=$1 port=$2 rc=0
    log "== $name: running $(basename "$RUNNER") against 127.0.0.1:$port"
    "$PYTHON" "$RUNNER" --proxy "http://127.0.0.1:$port" --host "$HOST" --origin-port "$ORIGIN_PORT" \
        --label "$name" --jobs "$JOBS" --json "$WORK/$name.json" "${RUNNER_ARGS[@]+"${RUNNER_ARGS[@]}"}" \
        >"$WORK/$name.txt" || rc=$?
    if [ "$rc" -ne 0 ]; then
        tail -n 5 "$WORK/$name.txt" >&2 || true
        NOTRUN[$name]="runner exit status $rc"
        BROKEN=1
        rm -f "$WORK/$name.json"
    fi
    grep -E '^(BREAKDOWN|CONFORMANCE) ' "$WORK/$name.txt" >&2 || true
}

ports=$ORIGIN_PORT
if want nginx; then ports+=" $NGINX_PORT"; fi
if want varnish; then ports+=" $VARNISH_PORT"; fi
if want lodestar; then ports+=" $LODESTAR_PORT"; fi
for p in $ports; do
    if port_busy "$p"; then die "port $p is already in use (set NGINX_PORT/VARNISH_PORT/LODESTAR_PORT/ORIGIN_PORT)"; fi
done

# ---------------------------------------------------------------- nginx ----
if want nginx; then
    mkdir -p "$WORK/nginx"
    render "$CONF/nginx.conf" "$WORK/nginx/nginx.conf" "$NGINX_PORT"
    NGINX=$(command -v nginx)
    log "== nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') on 127.0.0.1:$NGINX_PORT"
    if start_proxy "$WORK/nginx/stdout.log" "$NGINX_PORT" nginx "$WORK/nginx/error.log" \
        "$NGINX" -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'; then
        run_runner nginx "$NGINX_PORT"
    else
        NOTRUN[nginx]="nginx did not start"
        BROKEN=1
    fi
    stop_proxy
fi

# -------------------------------------------------------------- varnish ----
if want varnish; then
    mkdir -p "$WORK/varnish"
    chmod 755 "$WORK/varnish"
    render "$CONF/varnish.vcl" "$WORK/varnish.vcl" "$VARNISH_PORT"
    chmod 644 "$WORK/varnish.vcl"
    VARNISHD=$(command -v varnishd)
    log "== varnish: $("$VARNISHD" -V 2>&1 | head -n1) on 127.0.0.1:$VARNISH_PORT"
    if start_proxy "$WORK/varnish/varnishd.log" "$VARNISH_PORT" varnishd "$WORK/varnish/varnishd.log" \
        "$VARNISHD" -F -n "$WORK/varnish/instance" -a "127.0.0.1:$VARNISH_PORT" -f "$WORK/varnish.vcl" -s malloc,64m \
        -p default_ttl=0 -p default_grace=0 -p default_keep=3600; then
        run_runner varnish "$VARNISH_PORT"
    else
        NOTRUN[varnish]="varnishd did not start"
        BROKEN=1
    fi
    stop_proxy
fi

# ------------------------------------------------------------- lodestar ----
if want lodestar; then
    if [ -z "$LODESTAR_BIN" ] || [ ! -x "$LODESTAR_BIN" ]; then
        log "== lodestar: no binary (LODESTAR_BIN=${LODESTAR_BIN:-unset}; looked for .build/release/lodestar and .build/debug/lodestar)"
        NOTRUN[lodestar]="no lodestar binary (build it, or set LODESTAR_BIN)"
    else
        mkdir -p "$WORK/lodestar"
        render "$CONF/topology.json" "$WORK/lodestar/topology.json" "$LODESTAR_PORT"
        log "== lodestar: $LODESTAR_BIN edge --topology $WORK/lodestar/topology.json --node conf-edge on 127.0.0.1:$LODESTAR_PORT"
        if start_proxy "$WORK/lodestar/edge.log" "$LODESTAR_PORT" "lodestar edge" "$WORK/lodestar/edge.log" \
            "$LODESTAR_BIN" edge --topology "$WORK/lodestar/topology.json" --node conf-edge; then
            run_runner lodestar "$LODESTAR_PORT"
        else
            reason=$(grep -m1 -iE 'error|unknown|refused|invalid' "$WORK/lodestar/edge.log" | cut -c1-160 || true)
            NOTRUN[lodestar]="the edge did not start${reason:+: $reason}"
        fi
        stop_proxy
    fi
fi

# --------------------------------------------------------------- report ----
echo
NOTRUN_ENV=""
for name in "${!NOTRUN[@]}"; do NOTRUN_ENV+="$name=${NOTRUN[$name]}"$'\n'; done
NOTRUN_ENV="$NOTRUN_ENV" "$PYTHON" - "$WORK" $PROXIES <<'EOF'
import json, os, sys
work, proxies = sys.argv[1], sys.argv[2:]
notrun = dict(line.split("=", 1) for line in os.environ.get("NOTRUN_ENV", "").splitlines() if "=" in line)
results = {}
for p in proxies:
    path = os.path.join(work, f"{p}.json")
    if p not in notrun and os.path.exists(path):
        with open(path) as fh:
            results[p] = json.load(fh)
files, cases = [], {}
for doc in results.values():
    for rec in doc["results"]:
        if rec["file"] not in cases:
            files.append(rec["file"])
        cases.setdefault(rec["file"], set()).add(rec["id"])
rows = [["suite file", "cases"] + proxies]
totals = [0] + [0] * len(proxies)
for f in files:
    row = [f, str(len(cases[f]))]
    totals[0] += len(cases[f])
    for i, p in enumerate(proxies):
        if p in results:
            n = results[p]["files"].get(f, {}).get("PASS", 0)
            totals[i + 1] += n
            row.append(str(n))
        else:
            row.append("n/a")
    rows.append(row)
rows.append(["total", str(totals[0])] + [str(t) if p in results else "n/a" for t, p in zip(totals[1:], proxies)])
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
if results:
    for n, r in enumerate(rows):
        print(" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0 or n == len(rows) - 2:
            print("-+-".join("-" * w for w in widths))
    print("(cases passed per suite file; 'cases' includes the skipped browser-only ones; Tests/Conformance/README.md explains the result classes)")
    print()
for p in proxies:
    if p in results:
        s = results[p]["summary"]
        print(f"CONFORMANCE {p}: passed {s['passed']} of {s['total']} (failed {s['failed']}, skipped {s['skipped']})")
    else:
        print(f"CONFORMANCE {p}: not run ({notrun.get(p, 'no result')})")
EOF
[ "$BROKEN" = 0 ] || exit 2
if [ "${STRICT:-0}" = 1 ] && want lodestar && [ -n "${NOTRUN[lodestar]:-}" ]; then exit 1; fi
exit 0
