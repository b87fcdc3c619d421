#!/usr/bin/env bash
# Regenerates the dig query fixtures in this folder: each *.hex file holds the exact datagram that
# `dig` (bind9-dnsutils) sent for the command written on its first line. Run from anywhere:
#   bash Tests/LodestarDNSTests/Fixtures/capture.sh
# The dig version used is recorded in dig-version.txt. Message IDs and EDNS cookies are random per run.
set -euo pipefail
cd "$(dirname "$0")"
port=53531
capture() {
  local name=$1; shift
  python3 - "$port" "$name.hex" "dig $*" <<'PY' &
import socket, sys
port, out, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.settimeout(5)
data, _ = s.recvfrom(65535)
with open(out, "w") as f:
    f.write("# " + cmd + "\n" + data.hex() + "\n")
PY
  local py=$!
  sleep 1.5
  dig @127.0.0.1 -p "$port" +tries=1 +time=1 "$@" >/dev/null 2>&1 || true
  wait "$py"
}
capture plain www.example.test
capture ecs-v4 www.example.test +subnet=81.2.69.0/24
capture ecs-v6 www.example.test +subnet=2a00:1450:4001::/48
capture nsid www.example.test +nsid
capture edns1 www.example.test +edns=1 +noednsnegotiation
capture noedns www.example.test +noedns
capture aaaa-mixedcase WwW.ExAmPlE.TeSt AAAA +nocookie
capture any example.test ANY +notcp
dig -v 2>&1 | head -1 > dig-version.txt
