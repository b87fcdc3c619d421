#!/usr/bin/env python3
"""usage: ecs_spray.py PORT NAME COUNT SEED — COUNT queries for NAME A to 127.0.0.1:PORT, each with an ECS option for a
random public IPv4 /24 (what a resolver's clients across the internet look like). Prints one JSON line: answered,
failed, distinct subnets."""
import json
import random
import sys

import dns.edns
import dns.message
import dns.query


def main():
    port, name, count, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    answered = failed = 0
    subnets = set()
    while len(subnets) < count:
        first = rng.randint(1, 223)
        if first in (10, 127):
            continue
        subnets.add("%d.%d.%d.0" % (first, rng.randint(0, 255), rng.randint(0, 255)))
    for subnet in sorted(subnets, key=lambda _: rng.random()):
        q = dns.message.make_query(name, "A", use_edns=0, options=[dns.edns.ECSOption(subnet, 24)])
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=3)
            answered += 1 if r.answer else 0
            failed += 0 if r.answer else 1
        except Exception:
            failed += 1
    print(json.dumps({"answered": answered, "failed": failed, "subnets": len(subnets)}), flush=True)


if __name__ == "__main__":
    main()
