# shellcheck shell=bash
# Benchmarks/lib/common.sh - what edge.sh, cache.sh and cache-conformance.sh share: messages, the
# command line, --save, installing missing tools, the temp dir and the processes they start.
#
# Sourced right after the script's `set -euo pipefail`, with HERE set to the script's directory:
#   HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   . "$HERE/lib/common.sh"
# The script's --help is its header comment: the lines from line 2 to `set -euo pipefail`.
# Nothing here starts or kills anything at source time.

# shellcheck disable=SC2034 # ROOT: for the scripts
ROOT=$(cd "$HERE/.." && pwd)
BENCH_SELF=${BASH_SOURCE[-1]} # the script, as it was invoked (the --save re-run runs it again)
BENCH_NAME=${BENCH_SELF##*/}  # e.g. edge.sh: the prefix of its error messages
# What the script sets after sourcing this:
BENCH_TAG=bench               # the temp files' names: /tmp/lodestar-$BENCH_TAG.XXXXXX, ...
DIE_STATUS=1                  # the exit status of die
NEED_APT_GET=0                # 1: install_missing stops with a message when there is no apt-get
export PATH="$PATH:/usr/sbin:/sbin"

# The release build the benchmarks run, with the flags of the Makefile's `release` (runtime exclusivity checks off in
# every module, SwiftNIO's too; debug builds and `make test` keep them): "${RELEASE_BUILD[@]}" --scratch-path ...
RELEASE_BUILD=(swift build -c release -Xswiftc -enforce-exclusivity=unchecked)

log() { printf '%s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2; exit "$DIE_STATUS"; }
usage() { sed -n '2,/^set -euo/p' "$BENCH_SELF" | sed '$d; s/^# \{0,1\}//'; }
want() { [[ " $PROXIES " == *" $1 "* ]]; } # name -> is it one of the PROXIES to run?

# parse_args ONLY_VAR WHAT OPTIONS ARGS...: the script's command line.
#   --only X, --only=X   set the variable named ONLY_VAR to X ("--only needs WHAT" when X is missing)
#   -h, --help           print the usage and exit 0
#   OPTIONS lists the script's other options, of: --no-build (NO_BUILD=1), --save (SAVE=1),
#   -- (the rest of ARGS into RUNNER_ARGS). Anything else is an error.
# ARGS keeps the whole command line, for the --save re-run.
# shellcheck disable=SC2034 # NO_BUILD, RUNNER_ARGS: for the scripts
parse_args() {
    local var=$1 what=$2 opts=" $3 "
    shift 3
    ARGS=("$@")
    RUNNER_ARGS=()
    while [ $# -gt 0 ]; do
        case $1 in
            --only) [ $# -ge 2 ] || die "--only needs $what"; printf -v "$var" '%s' "$2"; shift ;;
            --only=*) printf -v "$var" '%s' "${1#--only=}" ;;
            -h | --help) usage; exit 0 ;;
            --no-build | --save | --)
                [[ "$opts" == *" $1 "* ]] || die "unknown argument: $1 (try --help)"
                case $1 in
                    --no-build) NO_BUILD=1 ;;
                    --save) SAVE=1 ;;
                    --) shift; RUNNER_ARGS=("$@"); break ;;
                esac
                ;;
            *) die "unknown argument: $1 (try --help)" ;;
        esac
        shift
    done
}

# save_output: with SAVE=1, run the script again with everything it prints (progress on stderr and
# the report on stdout) teed into Benchmarks/results/DATE-NAME.txt (DATE-NAME-run2.txt, ... when it
# exists; NAME: the script's name without .sh; RESULT_FILE=path to choose), and exit with its status.
# The re-run has _NAME_BENCH_TEE=1 in its environment (e.g. _EDGE_BENCH_TEE) and runs the benchmark.
save_output() {
    local stem=${BENCH_NAME%.sh} guard n rc
    guard=_${stem^^}_BENCH_TEE
    SAVE=${SAVE:-0}
    [ "$SAVE" = 1 ] && [ -z "${!guard:-}" ] || return 0
    mkdir -p "$HERE/results"
    if [ -z "${RESULT_FILE:-}" ]; then
        RESULT_FILE=$HERE/results/$(date +%F)-$stem.txt
        n=2
        while [ -e "$RESULT_FILE" ]; do RESULT_FILE=$HERE/results/$(date +%F)-$stem-run$n.txt; n=$((n + 1)); done
    fi
    log "saving the output to $RESULT_FILE"
    set +e
    { export "$guard=1"; "$BENCH_SELF" "${ARGS[@]+"${ARGS[@]}"}"; } 2>&1 | tee "$RESULT_FILE"
    rc=${PIPESTATUS[0]}
    log "output saved to $RESULT_FILE"
    exit "$rc"
}

# select_proxies ONLY_VAR "ALL": PROXIES = ALL (the script's proxies, space-separated, in their report
# order) when the variable named ONLY_VAR (the --only value) is empty, else the ones it names (a comma or
# space list), in ALL's order. Dies on a name that is not in ALL.
select_proxies() {
    local var=$1 all=$2 p sel="" names
    if [ -z "${!var:-}" ]; then PROXIES=$all; return; fi
    names=${all// /, }
    for p in ${!var//,/ }; do
        [[ " $all " == *" $p "* ]] || die "$var / --only takes $names or a comma list of them (got '$p')"
        sel="$sel $p "
    done
    [ -n "$sel" ] || die "$var / --only is empty"
    PROXIES=$(for p in $all; do [[ "$sel" != *" $p "* ]] || printf '%s ' "$p"; done)
    PROXIES=${PROXIES% }
}

# check_whole_numbers VAR...: each variable named must hold a whole number.
check_whole_numbers() {
    local v
    for v in "$@"; do
        [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
    done
}

# ---------------------------------------------------------------- tools ----
MISSING=()
need() { # command[:package]... -> the package (default: the command's name) of each command not found into MISSING
    local spec
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null || MISSING+=("${spec#*:}")
    done
}
# install_missing: apt-get install the packages in MISSING (as root; with NEED_APT_GET=1 it stops
# with a message when there is no apt-get). Debian's services (nginx would take port 80, varnish
# 6081) are kept from starting: invoke-rc.d asks /usr/sbin/policy-rc.d, and exit status 101 means
# "action forbidden". One is put there for the install only, and whatever was there before is put back.
_policy=/usr/sbin/policy-rc.d
_policy_saved=""
restore_policy() {
    if [ -n "$_policy_saved" ]; then cp -p "$_policy_saved" "$_policy"; rm -f "$_policy_saved"; else rm -f "$_policy"; fi
}
install_missing() {
    [ ${#MISSING[@]} -gt 0 ] || return 0
    log "installing: ${MISSING[*]}"
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${MISSING[*]}"
    [ "$NEED_APT_GET" != 1 ] || command -v apt-get >/dev/null || die "no apt-get: install ${MISSING[*]} yourself"
    _policy_saved=""
    if [ -e "$_policy" ]; then _policy_saved=$(mktemp "/tmp/lodestar-$BENCH_TAG-policy.XXXXXX"); cp -p "$_policy" "$_policy_saved"; fi
    trap restore_policy EXIT
    printf '#!/bin/sh\n# temporary, Benchmarks/%s: no service starts during its apt-get install\nexit 101\n' "$BENCH_NAME" >"$_policy"
    chmod 755 "$_policy"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING[@]}" >/dev/null
    restore_policy
    trap - EXIT
}

# ------------------------------------------------------------- temp dir ----
# make_workdir: WORK=/tmp/lodestar-$BENCH_TAG.XXXXXX (mode 755: nginx workers and varnish's child may
# run as other users and read the configs), removed on exit with WORK_EXTRA (another temp dir, if
# any) unless KEEP=1; the processes in PIDS are stopped on exit.
declare -a PIDS=()
WORK_EXTRA=""
make_workdir() {
    WORK=$(mktemp -d "/tmp/lodestar-$BENCH_TAG.XXXXXX")
    chmod 755 "$WORK"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}
kill_pids() { # TERM, wait up to 5 s, then KILL, and reap; only the PIDs given (all started by this script)
    local pid _ alive
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        alive=0
        for pid in "$@"; do if kill -0 "$pid" 2>/dev/null; then alive=1; fi; done
        [ "$alive" = 1 ] || break
        sleep 0.1
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
# shellcheck disable=SC2317 # cleanup runs from the EXIT trap
cleanup() {
    [ ${#PIDS[@]} -eq 0 ] || kill_pids "${PIDS[@]}"
    if [ "${KEEP:-0}" = 1 ]; then
        log "kept $WORK${WORK_EXTRA:+ and $WORK_EXTRA}"
    else
        rm -rf "$WORK"
        [ -z "$WORK_EXTRA" ] || rm -rf "$WORK_EXTRA"
    fi
}
track() { PIDS+=("$@"); }
untrack() {
    local keep=() p q drop
    for p in "${PIDS[@]}"; do
        drop=0
        for q in "$@"; do [ "$p" != "$q" ] || drop=1; done
        [ "$drop" = 1 ] || keep+=("$p")
    done
    PIDS=("${keep[@]+"${keep[@]}"}")
}
median() { # numbers on stdin, one a line -> their median ("n/a" for none)
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
