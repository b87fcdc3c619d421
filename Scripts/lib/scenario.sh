# Scripts/lib/scenario.sh: the scenario steps of Scripts/regions, shared by its two back ends (network namespaces,
# and containers with --containers). Sourced, not run.
#
# The back end defines:
#   REGIONS (array), NET (region -> N of 198.18.N.0/24), DNS_ADDR, DNS_PORT, EDGE_PORT, LATENCY ("" without delay)
#   client_addr REGION            the client's address (its DNS queries come from it)
#   client_run REGION CMD...      run CMD as the region's client (in its network namespace or container)
#   edge_running REGION           status 0 if the region's edge runs
#   edge_kill REGION              SIGKILL the region's edge (prints what it did)
#   edge_start REGION             start it again; status 0 once it listens
#   region_cut REGION             cut the region's edge site off from the rest of the network
#   region_restore REGION         connect it again
#   log / vlog                    print a line / print it with --verbose

FAILED=0
STEPS=0
CLOCK_EVENT=""   # what the last kill/start/cut/restore was, for wait-answer's figure
CLOCK_T0=""

now() { printf '%s' "$EPOCHREALTIME"; }
# Seconds between two EPOCHREALTIME stamps, two decimals.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

answer_of() {   # region name -> first A record of the client's answer ("" on none, "timeout" on no reply)
    local out
    if ! out=$(client_run "$1" dig "@$DNS_ADDR" -p "$DNS_PORT" +time=1 +tries=1 +short "$2" A 2>/dev/null); then
        printf 'timeout'
        return
    fi
    printf '%s' "$(printf '%s\n' "$out" | grep -E '^[0-9.]+$' | head -n1)"
}

check_region() { [[ -n "${NET[$1]:-}" ]] || { log "unknown region '$1' (regions: ${REGIONS[*]})"; return 1; }; }

step_result() {   # PASS|FAIL|SKIP, started-at, description
    local verdict=$1 t0=$2
    shift 2
    STEPS=$((STEPS + 1))
    [[ $verdict == FAIL ]] && FAILED=$((FAILED + 1))
    printf '%-4s [%3d] %s (%s ms)\n' "$verdict" "$STEPS" "$*" "$(ms_since "$t0")"
}

do_resolve() {   # REGION NAME expect ADDR
    local r=$1 name=$2 want=$4 t0 got
    t0=$(now)
    [[ ${3:-} == expect ]] || { step_result FAIL "$t0" "resolve: syntax: resolve REGION NAME expect ADDR"; return; }
    got=$(answer_of "$r" "$name")
    if [[ $got == "$want" ]]; then
        step_result PASS "$t0" "resolve $r: client $(client_addr "$r") → $name = $got"
    else
        step_result FAIL "$t0" "resolve $r: client $(client_addr "$r") → $name = ${got:-<no A>}, expected $want"
    fi
}

do_fetch() {     # REGION PATH
    local r=$1 path=$2 t0 edge out code via xorigin xcache
    t0=$(now)
    edge=$(answer_of "$r" www.example.test)
    if [[ ! $edge =~ ^198\.18\.[0-9]+\.10$ ]]; then
        step_result FAIL "$t0" "fetch $r $path: no edge in the answer (${edge:-none})"
        return
    fi
    out=$(client_run "$r" curl -s -o /dev/null -D - --max-time 5 \
        --resolve "www.example.test:$EDGE_PORT:$edge" "http://www.example.test:$EDGE_PORT$path" 2>&1 || true)
    code=$(printf '%s\n' "$out" | awk 'NR == 1 { print $2 }')
    xorigin=$(printf '%s\n' "$out" | awk 'tolower($1) == "x-origin:" { sub(/\r$/, ""); print $2 }')
    xcache=$(printf '%s\n' "$out" | awk 'tolower($1) == "x-cache:" { sub(/\r$/, ""); print $2 }')
    via=$(printf '%s\n' "$out" | awk 'tolower($1) == "via:" { sub(/\r$/, ""); sub(/^[^:]*: */, ""); print }')
    vlog "$out"
    # The edge that served it names itself in Via ("1.1 edge-<region>"); it must be the answered address's edge.
    local n=${edge#198.18.} want_edge="" d
    n=${n%%.*}
    for d in "${REGIONS[@]}"; do [[ ${NET[$d]} == "$n" ]] && want_edge="edge-$d"; done
    if [[ $code == 200 && $via == *"$want_edge"* ]]; then
        step_result PASS "$t0" "fetch $r $path via $edge: HTTP $code, Via: $via, X-Cache: ${xcache:-?}, origin ${xorigin:-?}"
    else
        step_result FAIL "$t0" "fetch $r $path via $edge: HTTP ${code:-no answer}, Via: ${via:-none} (expected $want_edge)"
    fi
}

do_kill() {
    local r=$1 t0 what
    t0=$(now)
    if ! edge_running "$r"; then
        step_result FAIL "$t0" "kill $r: edge not running"
        return
    fi
    CLOCK_T0=$(now)
    what=$(edge_kill "$r")
    CLOCK_EVENT="SIGKILL of edge-$r"
    step_result PASS "$t0" "kill $r: $what"
}

do_start() {
    local r=$1 t0
    t0=$(now)
    if edge_running "$r"; then
        step_result FAIL "$t0" "start $r: edge already running"
        return
    fi
    if edge_start "$r"; then
        CLOCK_EVENT="restart of edge-$r"
        CLOCK_T0=$t0
        step_result PASS "$t0" "start $r: edge-$r listening again"
    else
        step_result FAIL "$t0" "start $r: edge-$r did not come up"
    fi
}

do_site() {   # cut|restore REGION: the region's edge site off the network, or back on it
    local step=$1 r=$2 t0 what
    t0=$(now)
    if what=$("region_$step" "$r"); then
        if [[ $step == cut ]]; then CLOCK_EVENT="cut-off of $r"; else CLOCK_EVENT="reconnection of $r"; fi
        CLOCK_T0=$t0
        step_result PASS "$t0" "$step $r: $what"
    else
        step_result FAIL "$t0" "$step $r: $what"
    fi
}

matches() { if [[ $2 == is ]]; then [[ $1 == "$3" ]]; else [[ $1 != "$3" && $1 != timeout && -n $1 ]]; fi; }

do_wait_answer() {   # REGION NAME not|is ADDR within S
    local r=$1 name=$2 op=$3 addr=$4 limit=$6 t0 got="" deadline
    t0=$(now)
    [[ ${5:-} == within && ($op == is || $op == not) ]] || { step_result FAIL "$t0" "wait-answer: syntax"; return; }
    local base=${CLOCK_T0:-$t0}
    deadline=$(awk -v t="$base" -v d="$limit" 'BEGIN { printf "%.3f", t + d + 1 }')   # poll 1 s past the limit to measure
    while :; do
        got=$(answer_of "$r" "$name")
        if matches "$got" "$op" "$addr"; then break; fi
        if ! awk -v t="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(t < d) }'; then got="still ${got:-none}"; break; fi
        sleep 0.05
    done
    local took
    took=$(elapsed "$base" "$(now)")
    local what="wait-answer $r: $name $op $addr within ${limit} s"
    if matches "$got" "$op" "$addr" && awk -v a="$took" -v b="$limit" 'BEGIN { exit !(a <= b) }'; then
        step_result PASS "$t0" "$what: $got after $took s"
        log "FIGURE $r: ${CLOCK_EVENT:-start of step} → client $(client_addr "$r") answered $got after $took s (limit $limit s)"
    else
        step_result FAIL "$t0" "$what: $got after $took s"
        log "FIGURE $r: ${CLOCK_EVENT:-start of step} → no qualifying answer within $limit s (last: $got after $took s)"
    fi
}

do_stable() {   # REGION NAME not|is ADDR for N
    local r=$1 name=$2 op=$3 addr=$4 count=$6 t0 bad=0 i got seen=""
    t0=$(now)
    for ((i = 0; i < count; i++)); do
        got=$(answer_of "$r" "$name")
        matches "$got" "$op" "$addr" || { bad=$((bad + 1)); seen+=" $got"; }
        sleep 0.05
    done
    if ((bad == 0)); then
        step_result PASS "$t0" "stable $r: $count/$count answers for $name $op $addr"
    else
        step_result FAIL "$t0" "stable $r: $bad/$count answers for $name not $op $addr:$seen"
    fi
}

do_rtt() {   # REGION: TCP connect time (best of 3) from the client to every edge
    local r=$1 t0 d n best="" best_ms="" line="" chosen ms i v
    t0=$(now)
    chosen=$(answer_of "$r" www.example.test)
    for d in "${REGIONS[@]}"; do
        n=${NET[$d]}
        ms=""
        for i in 1 2 3; do
            v=$(client_run "$r" curl -s -o /dev/null --max-time 3 -w '%{time_connect}' "http://198.18.$n.10:$EDGE_PORT/" 2>/dev/null || true)
            v=$(awk -v s="${v:-0}" 'BEGIN { printf "%.3f", s * 1000 }')
            if [[ $v != 0.000 ]] && { [[ -z $ms ]] || awk -v a="$v" -v b="$ms" 'BEGIN { exit !(a < b) }'; }; then ms=$v; fi
        done
        line+=" $d ${ms:-unreachable} ms;"
        if [[ -n $ms ]] && { [[ -z $best_ms ]] || awk -v a="$ms" -v b="$best_ms" 'BEGIN { exit !(a < b) }'; }; then
            best_ms=$ms best="198.18.$n.10"
        fi
    done
    log "FIGURE rtt $r: TCP connect from $(client_addr "$r") (best of 3):${line%;}; DNS answer $chosen"
    if [[ -z $LATENCY ]]; then
        step_result SKIP "$t0" "rtt $r: nearest-by-RTT check skipped: no added delay (neither sch_netem nor NFQUEUE), so every RTT is the same ~local figure and says nothing about geography"
    elif [[ $chosen == "$best" ]]; then
        step_result PASS "$t0" "rtt $r: the answered edge $chosen has the smallest RTT ($best_ms ms)"
    else
        step_result FAIL "$t0" "rtt $r: answered $chosen but the smallest RTT is $best ($best_ms ms)"
    fi
}

run_scenario() {
    local file=$1 lineno=0 raw
    local -a w
    log "---- scenario $file ----"
    while IFS= read -r raw || [[ -n $raw ]]; do
        lineno=$((lineno + 1))
        raw=${raw%%#*}
        read -r -a w <<<"$raw" || true
        ((${#w[@]})) || continue
        local cmd=${w[0]}
        if [[ $cmd != sleep ]] && ! check_region "${w[1]:-}"; then
            STEPS=$((STEPS + 1)); FAILED=$((FAILED + 1)); log "FAIL $file:$lineno: $raw"; continue
        fi
        case "$cmd" in
            resolve) do_resolve "${w[@]:1}" ;;
            fetch) do_fetch "${w[@]:1}" ;;
            kill) do_kill "${w[1]}" ;;
            start) do_start "${w[1]}" ;;
            cut | restore) do_site "$cmd" "${w[1]}" ;;
            wait-answer) do_wait_answer "${w[@]:1}" ;;
            stable) do_stable "${w[@]:1}" ;;
            rtt) do_rtt "${w[1]}" ;;
            sleep) sleep "${w[1]}"; vlog "slept ${w[1]} s" ;;
            *) STEPS=$((STEPS + 1)); FAILED=$((FAILED + 1)); log "FAIL $file:$lineno: unknown step '$cmd'" ;;
        esac
    done <"$file"
}

# Great-circle distance in km between two regions (haversine, R = 6371 km); LAT and LON come from the back end.
distance_km() {
    awk -v la1="${LAT[$1]}" -v lo1="${LON[$1]}" -v la2="${LAT[$2]}" -v lo2="${LON[$2]}" 'BEGIN {
        pi = atan2(0, -1); r = pi / 180
        dla = (la2 - la1) * r; dlo = (lo2 - lo1) * r
        a = sin(dla / 2) ^ 2 + cos(la1 * r) * cos(la2 * r) * sin(dlo / 2) ^ 2
        printf "%d", 2 * 6371 * atan2(sqrt(a), sqrt(1 - a))
    }'
}

# One-way delay between two regions: MS_PER_100KM per 100 km, at least 1 ms.
delay_ms() {
    local km
    km=$(distance_km "$1" "$2")
    local d=$((km * MS_PER_100KM / 100))
    ((d < 1)) && d=1
    printf '%d' "$d"
}
