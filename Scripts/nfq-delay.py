#!/usr/bin/env python3
"""Inter-region latency without sch_netem: delays the packets that iptables queues to NFQUEUE, in userspace.

Scripts/regions runs one inside each client namespace, with rules that queue the client's IPv4 traffic to and from
198.18.0.0/16 (queue 0, --queue-bypass: without this program packets pass undelayed):

    nfq-delay.py --own 198.18.2.0/24 --delay 198.18.1.0/24=62 --delay 198.18.3.0/24=102 --default-ms 1

A packet from the own /24 is held for the delay of its destination's /24, one to it for the delay of its source's
/24 (so a round trip to region M takes twice M's delay), anything else for --default-ms. Packets are released in
order of their release time by one thread; each keeps its place in the kernel queue until then. Prints "ready" once
bound, and one line of counts on SIGTERM.
"""
import argparse
import heapq
import ipaddress
import signal
import sys
import threading
import time

import fnfqueue


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queue", type=int, default=0)
    ap.add_argument("--own", required=True, help="this namespace's /24")
    ap.add_argument("--delay", action="append", default=[], help="CIDR=MS, one way")
    ap.add_argument("--default-ms", type=float, default=1.0)
    return ap.parse_args()


def main():
    args = parse_args()
    own = ipaddress.ip_network(args.own)
    table = []
    for item in args.delay:
        cidr, ms = item.split("=", 1)
        table.append((ipaddress.ip_network(cidr), float(ms) / 1000.0))
    default = args.default_ms / 1000.0

    def delay_for(address):
        for net, seconds in table:
            if address in net:
                return seconds
        return default

    conn = fnfqueue.Connection(alloc_size=64, chunk_size=16, packet_size=4096)
    queue = conn.bind(args.queue)
    queue.set_mode(64, fnfqueue.COPY_PACKET)  # the IPv4 header is all it reads

    held = []  # (release time, sequence, packet)
    cond = threading.Condition()
    counts = {"held": 0, "released": 0, "unparsed": 0}

    def releaser():
        while True:
            with cond:
                while not held or held[0][0] > time.monotonic():
                    cond.wait(None if not held else max(0.0, held[0][0] - time.monotonic()))
                _, _, packet = heapq.heappop(held)
            try:
                packet.accept()
                counts["released"] += 1
            except Exception:  # the connection is closing
                pass

    threading.Thread(target=releaser, daemon=True).start()

    def stop(*_):
        print("nfq-delay: held %(held)d, released %(released)d, unparsed %(unparsed)d" % counts, flush=True)
        conn.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    sequence = 0
    for packet in conn:
        header = packet.payload
        if len(header) < 20 or header[0] >> 4 != 4:
            counts["unparsed"] += 1
            packet.accept()
            continue
        src = ipaddress.IPv4Address(bytes(header[12:16]))
        dst = ipaddress.IPv4Address(bytes(header[16:20]))
        seconds = delay_for(dst) if src in own else delay_for(src)
        sequence += 1
        counts["held"] += 1
        with cond:
            heapq.heappush(held, (time.monotonic() + seconds, sequence, packet))
            cond.notify()
    return 0


if __name__ == "__main__":
    sys.exit(main())
