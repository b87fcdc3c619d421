#!/usr/bin/env bash
# Benchmarks/cache-conformance.sh - HTTP cache conformance: the HTTP WG cache-tests suite
# (https://github.com/http-tests/cache-tests, the suite behind cache-tests.fyi) run the same way
# against three shared caches, one after the other, each in front of the same origin:
#
#   official (default): the suite's own Node cli and origin, unmodified
#     test-engine/cli.mjs --> proxy under test (127.0.0.1:PORT) --> test-engine/server/server.mjs (ORIGIN_PORT)
#   transcribed (--suite transcribed): our transcription of its cases and our Python runner
#     Tests/Conformance/cache_conformance.py --> proxy under test --> the runner's own origin (ORIGIN_PORT)
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
#           origin, a catch-all route "hosts": ["*"] with the cache enabled).
#
# Wiring of the official suite. The origin is the suite's server.mjs, started once from a copy of
# the suite in the temp dir (npm_config_port=ORIGIN_PORT, its pid file in the temp dir; it listens
# on all interfaces, as the suite's server does, and answers only the suite's paths). The cli gets
# --base http://127.0.0.1:PORT of the proxy, so every request (PUT /config/UUID to set a test up,
# GET|HEAD|POST|... /test/UUID, GET /state/UUID for what the origin saw) goes through the proxy
# with Host: 127.0.0.1:PORT; the origin ignores Host, so each proxy forwards every host to it
# (nginx sends Host: 127.0.0.1, Varnish and Lodestar pass it through; the edge's route matches "*").
# The suite's defaults are used as they are: 25 tests at a time, a 10 s timeout per request, 3 s
# pauses, browser-only tests not run (365 tests at the suite's current HEAD). What a proxy must do
# for the suite to run at all: forward PUT to the origin (its "setup" step; the three do), and not
# cache responses that carry no freshness information, or GET /state/UUID would be served stale
# from the cache: Varnish is started with -p default_ttl=0 for that (its default TTL is 120 s; the
# suite's own Varnish runs use the same three parameters); nginx and Lodestar need nothing extra.
# undici: the suite's client is Node's fetch(); its four interim-response tests (103 Early Hints,
# 102) also import undici (package.json: undici ^7), which must sit in the suite's node_modules.
#
# Where the suite and undici come from (third-party code: never committed here): CACHE_TESTS_DIR
# and UNDICI_DIR, each a checked-out tree or a bare git dir (as the `fetch` tool leaves under
# /work/.mirror), copied or `git archive`d into the temp dir. Defaults: CACHE_TESTS_DIR=
# /work/.mirror/http-tests+cache-tests/repo (at CACHE_TESTS_REF, default HEAD); UNDICI_DIR= the
# suite tree's node_modules/undici when it has one (after `npm i`), else /work/.mirror/nodejs+undici/repo,
# from a bare dir at UNDICI_REF, default the newest vX.Y.Z tag in the suite's undici range (undici's
# HEAD may need a newer Node than this machine's: 8.x wants Node >= 22.19). undici must load
# without a build step (`require()` of its index.js); the script checks that and stops with a
# message when it does not. When they are absent, the script says where to get them and stops (2).
#
# Each proxy is started, waited for (accepting connections), run against with the same options,
# and stopped (by its own PID). Official suite: a table per suite file (tests passed per proxy,
# required ones in parentheses), the failed required tests of each proxy (FAILURES=all: every
# test that did not pass, none: no list), and per proxy a BREAKDOWN line and
#   CONFORMANCE NAME: P/T passed, R/RT required
# where a test passed when the suite's cli recorded it as passed (whatever its dependencies did),
# T counts the tests the cli ran and a test without a kind is required (as in the suite). The
# suite's per-test JSON (test id -> true | [error, message]) is TMP/NAME.json, with
# TMP/NAME.tests.json (id, suite, kind, name, result class, message per test) and
# TMP/NAME.failures.txt beside it; TMP/NAME.err has the cli's stderr, TMP/origin/origin.log the
# origin's. Transcribed suite: the runner's table and `CONFORMANCE NAME: passed P of T (...)`.
#
# Failures are results: the exit status is 0 unless this script or the suite broke (2: bad
# settings, the suite or undici missing or not loadable, a port taken, the origin, nginx or
# varnishd not starting, the cli or runner failing, timing out or printing no results). A
# lodestar edge that does not start (no binary, topology refused, crash) is reported as
# "CONFORMANCE lodestar: not run (...)" with its log's last lines, and exits 0 (1 with STRICT=1).
#
# Usage:   Benchmarks/cache-conformance.sh [--only nginx|varnish|lodestar[,...]] [--suite official|transcribed]
#                                          [-- ARGS...]
#          official: ARGS may be --id TEST_ID (the suite's single-test mode: the cli prints the
#          exchanges and the result; no CONFORMANCE lines). transcribed: ARGS go to
#          cache_conformance.py (e.g. -- --only cc-response,vary --verbose).
# Env:     ONLY=nginx|varnish|lodestar (or a comma list)  SUITE=official|transcribed  KEEP=1 (keep the
#          temp dir: the suite copy, rendered configs, proxy and origin logs, JSON results)
#          LODESTAR_BIN=path (default .build/release/lodestar, else .build/debug/lodestar; never builds)
#          NGINX_PORT=18180 VARNISH_PORT=18181 LODESTAR_PORT=18182 DNS_PORT=18183 ORIGIN_PORT=18189
#          READY_TIMEOUT=30 STRICT=1 (exit 1 when lodestar was not run)
#          official: CACHE_TESTS_DIR, CACHE_TESTS_REF, UNDICI_DIR, UNDICI_REF (above), TEST_ID=id
#          (as --id), SUITE_TIMEOUT=900 (seconds per proxy for the cli), FAILURES=required|all|none
#          transcribed: JOBS=32 (cases in parallel) HOST=www.example.test (Host header)
# Needs:   python3, nginx, varnish; official: node >= 18 (20 for undici 7), git for bare dirs.
#          As root on Debian, missing ones are apt-get installed with
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

# --suite is this script's own option; the rest of the command line is common.sh's parse_args.
SUITE=${SUITE:-official}
rest=()
while [ $# -gt 0 ]; do
    case $1 in
        --suite) [ $# -ge 2 ] || die "--suite needs official or transcribed"; SUITE=$2; shift 2 ;;
        --suite=*) SUITE=${1#--suite=}; shift ;;
        --) rest+=("$@"); break ;;
        *) rest+=("$1"); shift ;;
    esac
done
parse_args ONLY "nginx, varnish or lodestar" "--" "${rest[@]+"${rest[@]}"}"
case $SUITE in
    official | transcribed) ;;
    *) die "SUITE / --suite must be official or transcribed (got '$SUITE')" ;;
esac
select_proxies ONLY "nginx varnish lodestar"

JOBS=${JOBS:-32}
KEEP=${KEEP:-0}
HOST=${HOST:-www.example.test}
NGINX_PORT=${NGINX_PORT:-18180}
VARNISH_PORT=${VARNISH_PORT:-18181}
LODESTAR_PORT=${LODESTAR_PORT:-18182}
DNS_PORT=${DNS_PORT:-18183}
ORIGIN_PORT=${ORIGIN_PORT:-18189}
READY_TIMEOUT=${READY_TIMEOUT:-30}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-900}
FAILURES=${FAILURES:-required}
MIRROR=/work/.mirror # where the `fetch` tool leaves repository snapshots
CACHE_TESTS_DIR=${CACHE_TESTS_DIR:-$MIRROR/http-tests+cache-tests/repo}
CACHE_TESTS_REF=${CACHE_TESTS_REF:-HEAD}
if [ -z "${UNDICI_DIR:-}" ]; then
    if [ -f "$CACHE_TESTS_DIR/node_modules/undici/package.json" ]; then
        UNDICI_DIR=$CACHE_TESTS_DIR/node_modules/undici
    else
        UNDICI_DIR=$MIRROR/nodejs+undici/repo
    fi
fi
UNDICI_REF=${UNDICI_REF:-}
TEST_ID=${TEST_ID:-}
check_whole_numbers JOBS NGINX_PORT VARNISH_PORT LODESTAR_PORT DNS_PORT ORIGIN_PORT READY_TIMEOUT SUITE_TIMEOUT
case $FAILURES in required | all | none) ;; *) die "FAILURES must be required, all or none (got '$FAILURES')" ;; esac

if [ "$SUITE" = official ]; then
    # the suite's cli has one option of its own: the test to run alone (test-host.sh -i)
    set -- "${RUNNER_ARGS[@]+"${RUNNER_ARGS[@]}"}"
    while [ $# -gt 0 ]; do
        case $1 in
            -i | --id) [ $# -ge 2 ] || die "$1 needs a test id"; TEST_ID=$2; shift 2 ;;
            --id=*) TEST_ID=${1#--id=}; shift ;;
            *) die "after --, the official suite takes only --id TEST_ID (got '$1'); the transcribed runner's options need --suite transcribed" ;;
        esac
    done
    [[ "$TEST_ID" =~ ^[A-Za-z0-9._-]*$ ]] || die "TEST_ID / --id must be a test id such as freshness-none (got '$TEST_ID')"
else
    [ -f "$RUNNER" ] || die "runner not found: $RUNNER"
fi

# The suite and undici: a tree (used as it is) or a bare git dir (git archive). Decided before the
# tool checks, since git is only needed for bare dirs.
is_tree() { [ -f "$1/$2" ]; } # is_tree DIR MARKER
is_bare() { [ -d "$1" ] && [ ! -e "$1/.git" ] && [ -f "$1/HEAD" ] && [ -d "$1/objects" ]; }
absent() { # absent WHAT: stop with what to do when the suite or undici is not where it should be
    die "$1
  The official suite runs the HTTP WG cache-tests with its own Node cli; this script never downloads it.
  Give it a copy of each (third-party code: keep it out of this repository):
    CACHE_TESTS_DIR=  a checkout of https://github.com/http-tests/cache-tests (or a bare git dir of it; CACHE_TESTS_REF= a commit, default HEAD)
    UNDICI_DIR=       a checkout of https://github.com/nodejs/undici at a release the suite's package.json accepts (^7: e.g. tag v7.29.0),
                      or a bare git dir of it (UNDICI_REF= a tag; default the newest in that range); after \`npm i\` in the suite's
                      checkout its node_modules/undici is used by default
  In this project's sandbox, the \`fetch\` tool's snapshots github:http-tests/cache-tests and github:nodejs/undici land in
  $MIRROR/http-tests+cache-tests/repo and $MIRROR/nodejs+undici/repo, the defaults.
  Or run our transcription of the cases instead: Benchmarks/cache-conformance.sh --suite transcribed"
}
if [ "$SUITE" = official ]; then # before installing anything
    is_tree "$CACHE_TESTS_DIR" test-engine/cli.mjs || is_bare "$CACHE_TESTS_DIR" ||
        absent "the cache-tests suite is not at CACHE_TESTS_DIR=$CACHE_TESTS_DIR (neither a checkout nor a bare git dir)."
    is_tree "$UNDICI_DIR" index.js || is_bare "$UNDICI_DIR" ||
        absent "undici (the suite's dependency) is not at UNDICI_DIR=$UNDICI_DIR (neither a checkout nor a bare git dir)."
fi

# ---------------------------------------------------------------- tools ----
need python3
if want nginx; then need nginx; fi
if want varnish; then need varnishd:varnish; fi
if [ "$SUITE" = official ]; then
    need node:nodejs timeout:coreutils
    if is_bare "$CACHE_TESTS_DIR" || is_bare "$UNDICI_DIR"; then need git; fi
fi
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
if [ "$SUITE" = official ]; then
    NODE=$(command -v node)
    # global fetch() (the suite's client) is Node 18+
    "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
        die "the cache-tests cli needs Node 18 or newer (undici 7: 20.18.1 or newer); $NODE is $("$NODE" --version)"
fi

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
    local pid=$1 port=$2 name=$3 logfile=$4 _
    for _ in $(seq 1 $((READY_TIMEOUT * 10))); do
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
stop_proxy() { # the one start_proxy started (the suite's origin stays tracked until the end)
    kill_pids "$PROXY_PID"
    untrack "$PROXY_PID"
}

# ------------------------------------------------- official suite setup ----
# SUITE_TREE: the suite's copy in the temp dir, with undici in its node_modules (where the cli's
# `import('undici')` looks). SUITE_INFO / UNDICI_INFO: where they came from, for the report.
version_in_range() { # version_in_range VERSION MAJOR MIN: VERSION is MAJOR.x.y and >= MIN (a caret range)
    [[ "$1" =~ ^([0-9]+)\.[0-9]+\.[0-9]+$ ]] && [ "${BASH_REMATCH[1]}" = "$2" ] &&
        [ "$(printf '%s\n' "$3" "$1" | sort -V | head -n1)" = "$3" ]
}
prepare_suite() {
    SUITE_TREE=$WORK/cache-tests
    mkdir -p "$SUITE_TREE/node_modules/undici"
    if is_tree "$CACHE_TESTS_DIR" test-engine/cli.mjs; then
        tar -C "$CACHE_TESTS_DIR" --exclude=./node_modules --exclude=./.git -cf - . | tar -C "$SUITE_TREE" -xf -
        SUITE_INFO="tree $CACHE_TESTS_DIR$(git -C "$CACHE_TESTS_DIR" log -1 --format=' (commit %H, %cs)' 2>/dev/null || true)"
    elif is_bare "$CACHE_TESTS_DIR"; then
        local commit
        commit=$(git --git-dir="$CACHE_TESTS_DIR" rev-parse --verify -q "$CACHE_TESTS_REF^{commit}") ||
            die "CACHE_TESTS_REF=$CACHE_TESTS_REF is not a commit of $CACHE_TESTS_DIR"
        git --git-dir="$CACHE_TESTS_DIR" archive "$commit" | tar -x -C "$SUITE_TREE" ||
            die "could not extract $CACHE_TESTS_DIR at $CACHE_TESTS_REF"
        SUITE_INFO="$CACHE_TESTS_DIR at $CACHE_TESTS_REF = commit $commit ($(git --git-dir="$CACHE_TESTS_DIR" log -1 --format=%cs "$commit"))"
    else
        absent "the cache-tests suite is not at CACHE_TESTS_DIR=$CACHE_TESTS_DIR (neither a checkout nor a bare git dir)."
    fi
    local f
    for f in test-engine/cli.mjs test-engine/server/server.mjs tests/index.mjs test-engine/lib/results.mjs package.json; do
        [ -f "$SUITE_TREE/$f" ] || absent "CACHE_TESTS_DIR=$CACHE_TESTS_DIR does not look like cache-tests: no $f."
    done

    # the undici range the suite asks for, e.g. ^7.4.0 -> 7, 7.4.0
    local range major="" min="" ref version
    range=$("$NODE" -e 'const p = require(process.argv[1]); console.log((p.dependencies || {}).undici || "")' "$SUITE_TREE/package.json")
    if [[ "$range" =~ ^\^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
        major=${BASH_REMATCH[1]}
        min=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}
    fi
    if is_tree "$UNDICI_DIR" index.js; then
        tar -C "$UNDICI_DIR" --exclude=./node_modules --exclude=./.git -cf - . | tar -C "$SUITE_TREE/node_modules/undici" -xf -
        UNDICI_INFO="tree $UNDICI_DIR"
    elif is_bare "$UNDICI_DIR"; then
        ref=$UNDICI_REF
        if [ -z "$ref" ] && [ -n "$major" ]; then
            # the newest release tag in the suite's range (HEAD may be a newer major that wants a newer Node)
            ref=$(git --git-dir="$UNDICI_DIR" tag -l "v$major.*" | while read -r t; do
                if version_in_range "${t#v}" "$major" "$min"; then printf '%s\n' "$t"; fi
            done | sort -V | tail -n1)
        fi
        if [ -z "$ref" ]; then
            ref=HEAD
            version=$(git --git-dir="$UNDICI_DIR" show HEAD:package.json 2>/dev/null | "$NODE" -e 'let s = ""; process.stdin.on("data", d => { s += d }).on("end", () => { try { console.log(JSON.parse(s).version) } catch { console.log("") } })')
            if [ -n "$major" ] && ! version_in_range "$version" "$major" "$min"; then
                absent "UNDICI_DIR=$UNDICI_DIR has no release tag in the suite's range $range, and its HEAD is $version (set UNDICI_REF= to choose a tag)."
            fi
        fi
        git --git-dir="$UNDICI_DIR" rev-parse --verify -q "$ref^{commit}" >/dev/null || die "UNDICI_REF=$ref is not a commit or tag of $UNDICI_DIR"
        git --git-dir="$UNDICI_DIR" archive "$ref" | tar -x -C "$SUITE_TREE/node_modules/undici" ||
            die "could not extract $UNDICI_DIR at $ref"
        UNDICI_INFO="$UNDICI_DIR at $ref"
    else
        absent "undici (the suite's dependency, $range) is not at UNDICI_DIR=$UNDICI_DIR (neither a checkout nor a bare git dir)."
    fi
    # It must load as it is: no build step, no dependencies (undici has none at run time). A HEAD
    # for a newer Node fails here, e.g. undici 8 on Node 20 ("webidl.util.markAsUncloneable is not a function").
    local err
    if ! err=$("$NODE" -e 'const u = require(process.argv[1]); if (typeof u.Agent !== "function" || typeof u.Agent.prototype.compose !== "function") throw new Error("no Agent.compose: too old for the suite")' \
        "$SUITE_TREE/node_modules/undici" 2>&1); then
        log "$(printf '%s\n' "$err" | grep -m3 -E 'Error|error' || printf '%s\n' "$err" | tail -n 3)"
        die "undici from $UNDICI_INFO does not load on node $("$NODE" --version) (its engines: $("$NODE" -e 'console.log(JSON.stringify(require(process.argv[1]).engines || {}))' "$SUITE_TREE/node_modules/undici/package.json" 2>/dev/null || echo '?')); choose a release in the suite's range $range that does: UNDICI_REF=vX.Y.Z (bare dir) or UNDICI_DIR=another checkout"
    fi
    version=$("$NODE" -e 'console.log(require(process.argv[1]).version)' "$SUITE_TREE/node_modules/undici/package.json")
    if [ -n "$major" ] && ! version_in_range "$version" "$major" "$min"; then
        log "warning: undici $version is outside the suite's range $range"
    fi
    UNDICI_INFO="undici $version ($UNDICI_INFO)"
    log "== cache-tests: $SUITE_INFO; $UNDICI_INFO; node $("$NODE" --version)"
}

start_origin() { # the suite's server.mjs on ORIGIN_PORT, from the suite's dir (it serves files from its cwd)
    mkdir -p "$WORK/origin"
    (cd "$SUITE_TREE" && exec env npm_config_protocol=http npm_config_port="$ORIGIN_PORT" \
        npm_config_pidfile="$WORK/origin/server.pid" "$NODE" test-engine/server/server.mjs) >"$WORK/origin/origin.log" 2>&1 &
    ORIGIN_PID=$!
    track "$ORIGIN_PID"
    wait_ready "$ORIGIN_PID" "$ORIGIN_PORT" "the suite's origin (test-engine/server/server.mjs)" "$WORK/origin/origin.log" ||
        die "the suite's origin did not start on port $ORIGIN_PORT"
    log "== origin: cache-tests test-engine/server/server.mjs on port $ORIGIN_PORT (pid $ORIGIN_PID)"
}

# -------------------------------------------------------------- runners ----
declare -A NOTRUN=()
declare -A VERSION=() # name -> what ran, for the report
BROKEN=0
run_runner() { # run_runner NAME PORT: the transcribed cases
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
run_cli() { # run_cli NAME PORT: the official suite's cli, its JSON into WORK/NAME.json (WORK/NAME.txt with --id)
    local name=$1 port=$2 rc=0 out start
    if ! kill -0 "$ORIGIN_PID" 2>/dev/null; then
        tail -n 20 "$WORK/origin/origin.log" >&2 || true
        die "the suite's origin exited (log above: $WORK/origin/origin.log)"
    fi
    out=$WORK/$name.json
    [ -z "$TEST_ID" ] || out=$WORK/$name.txt
    log "== $name: cache-tests test-engine/cli.mjs --base=http://127.0.0.1:$port${TEST_ID:+ --id=$TEST_ID}"
    start=$SECONDS
    # npm would set these from `npm run cli --base=... --id=...` and package.json's config; the cli reads
    # npm_config_id || npm_package_config_id and takes anything but '' as a test to run alone.
    (cd "$SUITE_TREE" && exec env npm_config_base="http://127.0.0.1:$port" npm_config_id="$TEST_ID" npm_package_config_id="$TEST_ID" \
        timeout -k 10 "$SUITE_TIMEOUT" "$NODE" --no-warnings test-engine/cli.mjs) >"$out" 2>"$WORK/$name.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        tail -n 5 "$WORK/$name.err" >&2 || true
        if [ "$rc" = 124 ]; then NOTRUN[$name]="the cli timed out after ${SUITE_TIMEOUT}s"; else NOTRUN[$name]="cli exit status $rc"; fi
        BROKEN=1
        return
    fi
    [ -n "$TEST_ID" ] && return
    # a run that printed no JSON object of results broke, whatever its status
    if ! "$NODE" -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); process.exit(d && typeof d === "object" && Object.keys(d).length ? 0 : 1)' "$out" 2>/dev/null; then
        head -c 400 "$out" >&2 || true
        tail -n 5 "$WORK/$name.err" >&2 || true
        NOTRUN[$name]="the cli printed no results (see $name.json / $name.err)"
        BROKEN=1
        return
    fi
    # the cli prints "ERROR: uuid name message" for a test whose setup (PUT /config/uuid) threw
    log "   done in $((SECONDS - start))s; $(grep -c '^ERROR:' "$WORK/$name.err" || true) setup errors on the cli's stderr"
}
run_suite() { if [ "$SUITE" = official ]; then run_cli "$@"; else run_runner "$@"; fi; }

ports=$ORIGIN_PORT
if want nginx; then ports+=" $NGINX_PORT"; fi
if want varnish; then ports+=" $VARNISH_PORT"; fi
if want lodestar; then ports+=" $LODESTAR_PORT"; fi
for p in $ports; do
    if port_busy "$p"; then die "port $p is already in use (set NGINX_PORT/VARNISH_PORT/LODESTAR_PORT/ORIGIN_PORT)"; fi
done

if [ "$SUITE" = official ]; then
    prepare_suite
    start_origin
fi

# ---------------------------------------------------------------- nginx ----
if want nginx; then
    mkdir -p "$WORK/nginx"
    render "$CONF/nginx.conf" "$WORK/nginx/nginx.conf" "$NGINX_PORT"
    NGINX=$(command -v nginx)
    VERSION[nginx]=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
    log "== nginx: ${VERSION[nginx]} on 127.0.0.1:$NGINX_PORT"
    if start_proxy "$WORK/nginx/stdout.log" "$NGINX_PORT" nginx "$WORK/nginx/error.log" \
        "$NGINX" -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'; then
        run_suite nginx "$NGINX_PORT"
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
    VERSION[varnish]=$("$VARNISHD" -V 2>&1 | head -n1)
    log "== varnish: ${VERSION[varnish]} on 127.0.0.1:$VARNISH_PORT"
    if start_proxy "$WORK/varnish/varnishd.log" "$VARNISH_PORT" varnishd "$WORK/varnish/varnishd.log" \
        "$VARNISHD" -F -n "$WORK/varnish/instance" -a "127.0.0.1:$VARNISH_PORT" -f "$WORK/varnish.vcl" -s malloc,64m \
        -p default_ttl=0 -p default_grace=0 -p default_keep=3600; then
        run_suite varnish "$VARNISH_PORT"
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
            # which binary ran: it may be rebuilt between runs, and --version alone does not tell builds apart
            VERSION[lodestar]="$LODESTAR_BIN $("$LODESTAR_BIN" --version 2>/dev/null | head -n1), sha256 $(sha256sum "$LODESTAR_BIN" | cut -c1-12), modified $(date -u -r "$LODESTAR_BIN" '+%F %T UTC')"
            log "== lodestar: ${VERSION[lodestar]}"
            run_suite lodestar "$LODESTAR_PORT"
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
if [ "$SUITE" = official ] && [ -n "$TEST_ID" ]; then
    # single-test mode: the cli's own output (exchanges as the client and origin saw them, then the result)
    for p in $PROXIES; do
        echo "=== $p (--id $TEST_ID)"
        if [ -f "$WORK/$p.txt" ] && [ -z "${NOTRUN[$p]:-}" ]; then sed 's/\x1b\[[0-9;]*m//g' "$WORK/$p.txt"; else echo "not run (${NOTRUN[$p]:-no result})"; fi
        echo
    done
elif [ "$SUITE" = official ]; then
    echo "cache-tests: $SUITE_INFO; $UNDICI_INFO; node $("$NODE" --version)"
    for p in $PROXIES; do [ -z "${VERSION[$p]:-}" ] || echo "$p: ${VERSION[$p]}"; done
    echo
    # shellcheck disable=SC2086 # PROXIES: one word per proxy
    NOTRUN_ENV="$NOTRUN_ENV" FAILURES="$FAILURES" "$NODE" "$CONF/report.mjs" "$SUITE_TREE" "$WORK" $PROXIES ||
        die "the report failed (results in $WORK, kept with KEEP=1)"
else
# shellcheck disable=SC2086 # PROXIES: one word per proxy
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
fi
[ "$BROKEN" = 0 ] || exit 2
if [ "${STRICT:-0}" = 1 ] && want lodestar && [ -n "${NOTRUN[lodestar]:-}" ]; then exit 1; fi
exit 0
